package store

import (
	"os"
	"testing"

	"secureaudit.dev/platform/pgtest"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
