module secureaudit.dev/services/report-agent

go 1.26.0

require (
	secureaudit.dev/deploy v0.0.0
	secureaudit.dev/gen v0.0.0
	secureaudit.dev/platform v0.0.0
)

replace (
	secureaudit.dev/deploy => ../../deploy
	secureaudit.dev/gen => ../../gen
	secureaudit.dev/platform => ../../platform
)
