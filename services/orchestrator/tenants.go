package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/google/uuid"
)

// tenantAgent is one -tenant-entra-agent entry: the entra-agent that
// resolves the audits of the clusters registered with an Entra tenant.
type tenantAgent struct {
	tenant, addr string
	// id is the SPIFFE ID its certificate must carry; empty: the
	// entra-agent's ID in this trust domain.
	id string
}

// tenantAgents is the repeatable -tenant-entra-agent flag,
// TENANT=HOST:PORT[,SPIFFE-ID] each.
type tenantAgents []tenantAgent

func (t *tenantAgents) String() string {
	var out []string
	for _, a := range *t {
		s := a.tenant + "=" + a.addr
		if a.id != "" {
			s += "," + a.id
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// Set parses one entry; a tenant given twice is an error.
func (t *tenantAgents) Set(v string) error {
	tenant, rest, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok {
		return fmt.Errorf("%q: want TENANT=HOST:PORT[,SPIFFE-ID]", v)
	}
	u, err := uuid.Parse(tenant)
	if err != nil || len(tenant) != 36 {
		return fmt.Errorf("%q: tenant %q is not an Entra tenant ID (a UUID)", v, tenant)
	}
	addr, id, _ := strings.Cut(rest, ",")
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("%q: address %q is not HOST:PORT", v, addr)
	}
	if id != "" && !strings.HasPrefix(id, "spiffe://") {
		return fmt.Errorf("%q: %q is not a SPIFFE ID (spiffe://domain/path)", v, id)
	}
	a := tenantAgent{tenant: u.String(), addr: addr, id: id}
	for _, b := range *t {
		if b.tenant == a.tenant {
			return fmt.Errorf("%q: tenant %s has an entra-agent already (%s)", v, a.tenant, b.addr)
		}
	}
	*t = append(*t, a)
	return nil
}

// setAll parses the entries of an environment variable, separated by
// white space.
func (t *tenantAgents) setAll(v string) error {
	for _, f := range strings.Fields(v) {
		if err := t.Set(f); err != nil {
			return err
		}
	}
	return nil
}

// tenantFlag is -tenant-entra-agent with its environment variable: the
// variable's entries are the default, and the first entry given on the
// command line replaces them all (as every other flag replaces its
// variable's value), so that a flag may give a tenant the variable gives
// too.
type tenantFlag struct {
	tenantAgents
	// env is true while the entries are the variable's.
	env bool
}

// Set adds one command-line entry, dropping the variable's first.
func (f *tenantFlag) Set(v string) error {
	if f.env {
		f.tenantAgents, f.env = nil, false
	}
	return f.tenantAgents.Set(v)
}

// setEnv sets the entries of the environment variable.
func (f *tenantFlag) setEnv(v string) error {
	f.tenantAgents, f.env = nil, true
	return f.setAll(v)
}
