module secureaudit.dev/cli

go 1.26.0

require (
	secureaudit.dev/gen v0.0.0
	secureaudit.dev/platform v0.0.0
)

replace (
	secureaudit.dev/gen => ../gen
	secureaudit.dev/platform => ../platform
)
