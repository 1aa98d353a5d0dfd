package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestTenantAgentsFlag parses -tenant-entra-agent entries and refuses bad
// ones naming what is wrong.
func TestTenantAgentsFlag(t *testing.T) {
	var ok tenantAgents
	for _, v := range []string{
		"72F988BF-86F1-41AF-91AB-2D7CD011DB47=entra-a.example.com:8442",
		"0b0b0b0b-0000-4000-8000-00000000000b=127.0.0.1:9442,spiffe://secureaudit.local/ns/tenant-b/sa/entra-agent",
	} {
		if err := ok.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	want := "72f988bf-86f1-41af-91ab-2d7cd011db47=entra-a.example.com:8442 0b0b0b0b-0000-4000-8000-00000000000b=127.0.0.1:9442,spiffe://secureaudit.local/ns/tenant-b/sa/entra-agent"
	if got := ok.String(); got != want {
		t.Errorf("parsed %q, want %q", got, want)
	}
	tests := []struct{ in, want string }{
		{"entra-a.example.com:8442", "want TENANT=HOST:PORT"},
		{"tenant-a=entra-a.example.com:8442", `tenant "tenant-a" is not an Entra tenant ID`},
		{"72f988bf86f141af91ab2d7cd011db47=entra-a.example.com:8442", "is not an Entra tenant ID"},
		{"0c0c0c0c-0000-4000-8000-00000000000c=entra-c.example.com", `address "entra-c.example.com" is not HOST:PORT`},
		{"0c0c0c0c-0000-4000-8000-00000000000c=entra-c.example.com:8442,entra-agent", `"entra-agent" is not a SPIFFE ID`},
		{"72f988bf-86f1-41af-91ab-2d7cd011db47=entra-other.example.com:8442", "tenant 72f988bf-86f1-41af-91ab-2d7cd011db47 has an entra-agent already (entra-a.example.com:8442)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := append(tenantAgents(nil), ok...)
			err := got.Set(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Set(%q) = %v, want an error saying %q", tt.in, err, tt.want)
			}
		})
	}
	var env tenantAgents
	if err := env.setAll(" 72f988bf-86f1-41af-91ab-2d7cd011db47=a:1\n0b0b0b0b-0000-4000-8000-00000000000b=b:2 "); err != nil || len(env) != 2 {
		t.Errorf("setAll: %v, %d entries; want 2", err, len(env))
	}
}

// TestTenantFlagReplacesEnv: the command line's -tenant-entra-agent
// entries replace the environment variable's (a tenant both give is
// no error), and without any the variable's are kept.
func TestTenantFlagReplacesEnv(t *testing.T) {
	const env = "72f988bf-86f1-41af-91ab-2d7cd011db47=env-a:1 0b0b0b0b-0000-4000-8000-00000000000b=env-b:2"
	var f tenantFlag
	if err := f.setEnv(env); err != nil {
		t.Fatal(err)
	}
	if got := f.String(); got != "72f988bf-86f1-41af-91ab-2d7cd011db47=env-a:1 0b0b0b0b-0000-4000-8000-00000000000b=env-b:2" {
		t.Errorf("from the environment: %q", got)
	}
	for _, v := range []string{"72f988bf-86f1-41af-91ab-2d7cd011db47=flag-a:3", "0c0c0c0c-0000-4000-8000-00000000000c=flag-c:4"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q) after the environment: %v", v, err)
		}
	}
	if got, want := f.String(), "72f988bf-86f1-41af-91ab-2d7cd011db47=flag-a:3 0c0c0c0c-0000-4000-8000-00000000000c=flag-c:4"; got != want {
		t.Errorf("flags over the environment give %q, want %q", got, want)
	}
	// Two flags for one tenant are still an error.
	if err := f.Set("72f988bf-86f1-41af-91ab-2d7cd011db47=flag-other:5"); err == nil || !strings.Contains(err.Error(), "has an entra-agent already") {
		t.Errorf("a tenant given twice on the command line: %v", err)
	}
}

// TestTenantFlagOverEnvStarts: the orchestrator's command line gives a
// tenant its environment variable gives too, and the start goes past the
// flags (to the next thing missing, -callers) instead of refusing the
// tenant as given twice.
func TestTenantFlagOverEnvStarts(t *testing.T) {
	t.Setenv("SECUREAUDIT_TENANT_ENTRA_AGENT", "72f988bf-86f1-41af-91ab-2d7cd011db47=env-a:1")
	t.Setenv("SECUREAUDIT_CALLERS", "")
	err := realMain(context.Background(), []string{"-tenant-entra-agent", "72f988bf-86f1-41af-91ab-2d7cd011db47=flag-a:3"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-callers is required") {
		t.Errorf("start with the env's tenant given again as a flag: %v, want the flags accepted (and -callers missing)", err)
	}
}
