package e2e

import (
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

func validatorAndTracer(t *testing.T) (*validation.Validator, trace.TracerProvider) {
	t.Helper()
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing("test", "")
	if err != nil {
		t.Fatal(err)
	}
	return v, tr.Provider
}
