module secureaudit.dev/services/risk-agent

go 1.26.0

require (
	google.golang.org/protobuf v1.36.12
	secureaudit.dev/gen v0.0.0
)

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.1 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.85.0 // indirect
)

replace (
	secureaudit.dev/deploy => ../../deploy
	secureaudit.dev/gen => ../../gen
	secureaudit.dev/platform => ../../platform
)
