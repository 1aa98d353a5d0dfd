module secureaudit.dev/test

go 1.26.0

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.1
	github.com/google/go-cmp v0.7.0
	github.com/spiffe/go-spiffe/v2 v2.9.0
	go.opentelemetry.io/otel/trace v1.47.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
	secureaudit.dev/cli v0.0.0
	secureaudit.dev/deploy v0.0.0
	secureaudit.dev/gen v0.0.0
	secureaudit.dev/platform v0.0.0
	secureaudit.dev/services/entra-agent v0.0.0
	secureaudit.dev/services/orchestrator v0.0.0
	secureaudit.dev/services/report-agent v0.0.0
	secureaudit.dev/services/risk-agent v0.0.0
)

require (
	buf.build/go/protovalidate v1.4.0 // indirect
	cel.dev/cel-go v0.32.0 // indirect
	cel.dev/expr v0.25.3 // indirect
	github.com/antlr4-go/antlr/v4 v4.13.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.5 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/grpc-ecosystem/go-grpc-middleware/v2 v2.3.4 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc v0.72.0 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/exporters/stdout/stdouttrace v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/sdk v1.47.0 // indirect
	go.yaml.in/yaml/v2 v2.4.4 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/exp v0.0.0-20260820142414-ca536658362e // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260819154853-08b0e4226688 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	sigs.k8s.io/yaml v1.6.0 // indirect
)

replace (
	secureaudit.dev/cli => ../cli
	secureaudit.dev/deploy => ../deploy
	secureaudit.dev/gen => ../gen
	secureaudit.dev/platform => ../platform
	secureaudit.dev/services/entra-agent => ../services/entra-agent
	secureaudit.dev/services/orchestrator => ../services/orchestrator
	secureaudit.dev/services/report-agent => ../services/report-agent
	secureaudit.dev/services/risk-agent => ../services/risk-agent
)
