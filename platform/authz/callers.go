package authz

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	yaml "go.yaml.in/yaml/v3"

	"secureaudit.dev/platform/identity"
)

// Role is what a caller of a public API may do. Each method of the
// orchestrator's scope manifest names the role it requires; the caller
// policy says which callers hold which roles.
type Role string

// The roles of the public API.
const (
	// Viewer reads audits, reports, history, anomalies and controls.
	Viewer Role = "viewer"
	// Operator starts and cancels audits and manages schedules.
	Operator Role = "operator"
	// Approver records decisions: scope approvals, review decisions, risk
	// acceptances.
	Approver Role = "approver"
	// Auditor exports the evidence.
	Auditor Role = "auditor"
)

// Roles lists every role.
var Roles = []Role{Viewer, Operator, Approver, Auditor}

func knownRole(r string) bool { return slices.Contains(Roles, Role(r)) }

func roleNames() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// CallersKind and CallersAPIVersion identify a caller policy file.
const (
	CallersAPIVersion = "secureaudit.dev/v1"
	CallersKind       = "CallerPolicy"
)

// Callers is a caller policy: which callers (a SPIFFE ID, or a path pattern
// within the trust domain) hold which roles, and which single methods beyond
// them. It grants nothing by itself: a method is callable by a caller only
// when the scope manifest names the method's role (or the method) and the
// caller matches an entry holding it. Build it with ParseCallers or
// LoadCallers.
type Callers struct {
	source  string
	entries []callerEntry
}

type callerEntry struct {
	where   string // "file:line: callers[i]"
	id      spiffeid.ID
	pattern string // a path.Match pattern on the ID's path; empty for id
	roles   []Role
	methods []string
}

// Source names the file (or source) the policy was read from.
func (c *Callers) Source() string { return c.source }

// LoadCallers reads a caller policy file.
func LoadCallers(file string) (*Callers, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read caller policy: %w", err)
	}
	return ParseCallers(file, data)
}

// ParseCallers parses a caller policy. source names it in errors, which say
// the line and entry at fault:
//
//	apiVersion: secureaudit.dev/v1
//	kind: CallerPolicy
//	callers:
//	  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
//	    roles: [viewer, operator]
//	  - path: /ns/ci/sa/*            # any ServiceAccount of namespace ci
//	    roles: [operator]
//	    methods: [/secureaudit.v1.EvidenceService/ExportEvidence]
//
// IDs written with the default trust domain and namespace are resolved
// against the configured ones (identity.Resolve); a path pattern is matched
// (path.Match: * stays within one segment) against the paths of IDs of the
// configured trust domain only.
func ParseCallers(source string, data []byte) (*Callers, error) {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("caller policy %s:%d: %s", source, line, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("caller policy %s: %w", source, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("caller policy %s: want a mapping with apiVersion, kind and callers", source)
	}
	root := doc.Content[0]
	var apiVersion, kind string
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "apiVersion":
			apiVersion = v.Value
		case "kind":
			kind = v.Value
		case "callers":
			list = v
		default:
			return nil, fail(k.Line, "unknown field %q (want apiVersion, kind, callers)", k.Value)
		}
	}
	if apiVersion != CallersAPIVersion || kind != CallersKind {
		return nil, fail(root.Line, "want apiVersion %s and kind %s, got %q and %q", CallersAPIVersion, CallersKind, apiVersion, kind)
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fail(root.Line, "callers: want a list of entries")
	}
	c := &Callers{source: source}
	seen := map[string]string{}
	for i, n := range list.Content {
		e := callerEntry{where: fmt.Sprintf("%s:%d: callers[%d]", source, n.Line, i)}
		bad := func(line int, format string, args ...any) error {
			return fmt.Errorf("caller policy %s:%d: callers[%d]: %s", source, line, i, fmt.Sprintf(format, args...))
		}
		if n.Kind != yaml.MappingNode {
			return nil, bad(n.Line, "want a mapping with id or path, and roles or methods")
		}
		var id, pattern string
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			switch k.Value {
			case "id", "path":
				if v.Kind != yaml.ScalarNode {
					return nil, bad(v.Line, "%s: want a string", k.Value)
				}
				if k.Value == "id" {
					id = v.Value
				} else {
					pattern = v.Value
				}
			case "roles":
				var roles []string
				if err := v.Decode(&roles); err != nil {
					return nil, bad(v.Line, "roles: want a list of %s", roleNames())
				}
				for _, r := range roles {
					if !knownRole(r) {
						return nil, bad(v.Line, "unknown role %q (want %s)", r, roleNames())
					}
					e.roles = append(e.roles, Role(r))
				}
			case "methods":
				if err := v.Decode(&e.methods); err != nil {
					return nil, bad(v.Line, "methods: want a list of full method names")
				}
				for _, m := range e.methods {
					if !strings.HasPrefix(m, "/") || strings.Count(m, "/") != 2 {
						return nil, bad(v.Line, "method %q is not a full method name (/package.Service/Method)", m)
					}
				}
			default:
				return nil, bad(k.Line, "unknown field %q (want id or path, roles, methods)", k.Value)
			}
		}
		switch {
		case id != "" && pattern != "":
			return nil, bad(n.Line, "give either id or path, not both")
		case id != "":
			parsed, err := identity.Parse(identity.Resolve(id))
			if err != nil {
				return nil, bad(n.Line, "id: %v", err)
			}
			e.id = parsed
		case pattern != "":
			if !strings.HasPrefix(pattern, "/") || strings.Contains(pattern, "//") {
				return nil, bad(n.Line, "path %q: want an absolute path such as /ns/ci/sa/*", pattern)
			}
			if _, err := path.Match(pattern, "/"); err != nil {
				return nil, bad(n.Line, "path %q: %v", pattern, err)
			}
			e.pattern = pattern
		default:
			return nil, bad(n.Line, "no id or path")
		}
		if len(e.roles) == 0 && len(e.methods) == 0 {
			return nil, bad(n.Line, "grants nothing: give roles or methods")
		}
		key := e.id.String() + e.pattern
		if prev, ok := seen[key]; ok {
			return nil, bad(n.Line, "%s is already given at %s", key, prev)
		}
		seen[key] = e.where
		c.entries = append(c.entries, e)
	}
	return c, nil
}

func (e callerEntry) matches(caller spiffeid.ID) bool {
	if e.pattern == "" {
		return e.id == caller
	}
	if caller.TrustDomain() != identity.Domain() {
		return false
	}
	ok, err := path.Match(e.pattern, caller.Path())
	return err == nil && ok
}

// RolesOf returns the roles the policy gives caller, in the order of Roles.
func (c *Callers) RolesOf(caller spiffeid.ID) []Role {
	var out []Role
	for _, r := range Roles {
		if c.has(caller, r) {
			out = append(out, r)
		}
	}
	return out
}

func (c *Callers) has(caller spiffeid.ID, role Role) bool {
	if c == nil {
		return false
	}
	for _, e := range c.entries {
		if slices.Contains(e.roles, role) && e.matches(caller) {
			return true
		}
	}
	return false
}

func (c *Callers) hasMethod(caller spiffeid.ID, method string) bool {
	if c == nil {
		return false
	}
	for _, e := range c.entries {
		if slices.Contains(e.methods, method) && e.matches(caller) {
			return true
		}
	}
	return false
}

// check returns an error naming the entry of every method the policy names
// that is not a method of the server's public API (one naming a role).
func (c *Callers) check(server string, public map[string]bool) error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, e := range c.entries {
		for _, m := range e.methods {
			if !public[m] {
				errs = append(errs, fmt.Errorf("caller policy %s: unknown method %s (not a method of the public API of %s)", e.where, m, server))
			}
		}
	}
	return errors.Join(errs...)
}
