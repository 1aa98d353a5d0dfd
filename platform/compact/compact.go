// Package compact makes decoded findings share what repeats among them.
package compact

import (
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Compactor makes the findings of one audit share what repeats among them,
// as they arrive: a role's matched rules and a control's title are decoded
// again for every finding that carries them (at 100,000 objects, tens of
// MB the orchestrator and the report-agent would hold through rendering). Equal
// messages (the subject, binding, role and scope, each matched rule and
// control title) are kept once, shared by every finding that holds them, and
// equal strings of the fields that repeat (rule IDs, titles, control IDs)
// once. The findings read and encode exactly as before; a caller must
// change no part of a finding after it was compacted. Not for concurrent
// use.
type Compactor struct {
	strs map[string]string
	msgs map[string]proto.Message
	key  []byte
}

// New returns a compactor that has seen no finding.
func New() *Compactor {
	return &Compactor{
		strs: map[string]string{},
		msgs: map[string]proto.Message{},
	}
}

func (c *Compactor) str(s string) string {
	if v, ok := c.strs[s]; ok {
		return v
	}
	c.strs[s] = s
	return s
}

func (c *Compactor) strings(ss []string) {
	for i, s := range ss {
		ss[i] = c.str(s)
	}
}

// Finding shares what f repeats of the findings before it.
func (c *Compactor) Finding(f *secureauditv1.Finding) {
	f.RuleId = c.str(f.GetRuleId())
	f.Title = c.str(f.GetTitle())
	f.SeverityReason = c.str(f.GetSeverityReason())
	f.Description = c.str(f.GetDescription())
	c.strings(f.Controls)
	for i, t := range f.GetControlTitles() {
		f.ControlTitles[i] = shared(c, t)
	}
	for i, r := range f.GetMatchedRules() {
		f.MatchedRules[i] = shared(c, r)
	}
	f.Subject = shared(c, f.GetSubject())
	f.Binding = shared(c, f.GetBinding())
	f.Role = shared(c, f.GetRole())
	f.Scope = shared(c, f.GetScope())
	for _, h := range f.GetFolded() {
		h.RuleId = c.str(h.GetRuleId())
		c.strings(h.Controls)
	}
}

// shared returns the message equal to m that an earlier finding holds, or
// m, kept for those after it. Equal messages of a type encode to equal
// bytes (deterministically, unknown fields included), so the one shared
// reads exactly as the one it replaces.
func shared[M interface {
	proto.Message
	comparable
}](c *Compactor, m M) M {
	var zero M
	if m == zero {
		return m
	}
	key, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(append(append(c.key[:0], m.ProtoReflect().Descriptor().FullName()...), 0), m)
	c.key = key
	if err != nil {
		return m
	}
	if s, ok := c.msgs[string(key)]; ok {
		return s.(M)
	}
	c.msgs[string(key)] = m
	return m
}
