// Package collect reads the RBAC state of a cluster, from a file or directory
// of Kubernetes objects or from a live API server, and normalizes it into the
// snapshot of the RBACService contract. Objects of other kinds, Secrets above
// all, are counted by kind and never decoded.
package collect

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// MaxChunkObjects is the most objects one SnapshotChunk may hold (the
// contract's snapshot_chunk.max_objects rule).
const MaxChunkObjects = 500

// Limits that protect memory. The API server stores objects of up to about
// 1.5 MiB (etcd's request limit) and accepts requests of up to 3 MiB; an
// object the snapshot cannot hold within these limits is left out and
// reported (Snapshot.Unaudited), never a failed collection.
const (
	// MaxObjectBytes bounds one converted object (its protobuf encoding).
	MaxObjectBytes = 2 << 20
	// maxRawObjectBytes bounds one object as read from a file, before it
	// is decoded.
	maxRawObjectBytes = 4 << 20
	// MaxChunkBytes bounds the objects of one chunk (their protobuf
	// encoding), well under the RPC message limit.
	MaxChunkBytes = 8 << 20
	// maxUnauditedListed is the contract's bound on the unaudited objects
	// a trailer names.
	maxUnauditedListed = 1000
	// maxUnauditedName is the contract's bound on an unaudited object's name.
	maxUnauditedName = 1024
	// maxUnauditedNamespace is the contract's bound on its namespace.
	maxUnauditedNamespace = 253
)

// Snapshot is a normalized RBAC snapshot: a header and the objects of each
// kind, sorted by namespace and name once Load returns it.
type Snapshot struct {
	Header              *secureauditv1.SnapshotHeader
	Namespaces          []*secureauditv1.Namespace
	Roles               []*secureauditv1.Role
	ClusterRoles        []*secureauditv1.ClusterRole
	RoleBindings        []*secureauditv1.RoleBinding
	ClusterRoleBindings []*secureauditv1.ClusterRoleBinding
	ServiceAccounts     []*secureauditv1.ServiceAccount
	Workloads           []*secureauditv1.Workload
	// Skipped counts the objects of other kinds by kind.
	Skipped map[string]uint32
	// Unaudited names the objects left out because they exceed a limit
	// that protects memory (the first maxUnauditedListed of them), in the
	// order met; UnauditedCount counts them all.
	Unaudited      []*secureauditv1.UnauditedObject
	UnauditedCount uint32
}

// Counts returns the number of objects of each kind.
func (s *Snapshot) Counts() *secureauditv1.ObjectCounts {
	return &secureauditv1.ObjectCounts{
		Namespaces:          uint32(len(s.Namespaces)),
		Roles:               uint32(len(s.Roles)),
		ClusterRoles:        uint32(len(s.ClusterRoles)),
		RoleBindings:        uint32(len(s.RoleBindings)),
		ClusterRoleBindings: uint32(len(s.ClusterRoleBindings)),
		ServiceAccounts:     uint32(len(s.ServiceAccounts)),
		Workloads:           uint32(len(s.Workloads)),
	}
}

// Trailer returns the trailer that closes the snapshot's stream.
func (s *Snapshot) Trailer() *secureauditv1.SnapshotTrailer {
	var skipped map[string]uint32
	if len(s.Skipped) > 0 {
		skipped = make(map[string]uint32, len(s.Skipped))
		for k, v := range s.Skipped {
			skipped[k] = v
		}
	}
	return &secureauditv1.SnapshotTrailer{
		Counts: s.Counts(), Skipped: skipped,
		Unaudited: s.Unaudited, UnauditedCount: s.UnauditedCount,
	}
}

// Chunks splits the snapshot into chunks of at most limit objects (limit is
// capped at MaxChunkObjects) and at most MaxChunkBytes of them. The first
// chunk carries the header and the last the trailer; an empty snapshot is a
// single chunk carrying both.
func (s *Snapshot) Chunks(limit int) []*secureauditv1.SnapshotChunk {
	if limit <= 0 || limit > MaxChunkObjects {
		limit = MaxChunkObjects
	}
	cur := &secureauditv1.SnapshotChunk{Header: s.Header}
	chunks := []*secureauditv1.SnapshotChunk{cur}
	n, size := 0, 0
	// next returns the chunk with room for one more object of o's size.
	next := func(o proto.Message) *secureauditv1.SnapshotChunk {
		sz := proto.Size(o)
		if n == limit || n > 0 && size+sz > MaxChunkBytes {
			cur = &secureauditv1.SnapshotChunk{}
			chunks = append(chunks, cur)
			n, size = 0, 0
		}
		n++
		size += sz
		return cur
	}
	for _, o := range s.Namespaces {
		c := next(o)
		c.Namespaces = append(c.Namespaces, o)
	}
	for _, o := range s.Roles {
		c := next(o)
		c.Roles = append(c.Roles, o)
	}
	for _, o := range s.ClusterRoles {
		c := next(o)
		c.ClusterRoles = append(c.ClusterRoles, o)
	}
	for _, o := range s.RoleBindings {
		c := next(o)
		c.RoleBindings = append(c.RoleBindings, o)
	}
	for _, o := range s.ClusterRoleBindings {
		c := next(o)
		c.ClusterRoleBindings = append(c.ClusterRoleBindings, o)
	}
	for _, o := range s.ServiceAccounts {
		c := next(o)
		c.ServiceAccounts = append(c.ServiceAccounts, o)
	}
	for _, o := range s.Workloads {
		c := next(o)
		c.Workloads = append(c.Workloads, o)
	}
	cur.Trailer = s.Trailer()
	return chunks
}

// sort orders every kind by namespace, then name (workloads also by kind), so
// that the same input always yields the same stream.
func (s *Snapshot) sort() {
	byMeta := func(a, b *secureauditv1.ObjectMeta) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	}
	slices.SortFunc(s.Namespaces, func(a, b *secureauditv1.Namespace) int { return byMeta(a.Meta, b.Meta) })
	slices.SortFunc(s.Roles, func(a, b *secureauditv1.Role) int { return byMeta(a.Meta, b.Meta) })
	slices.SortFunc(s.ClusterRoles, func(a, b *secureauditv1.ClusterRole) int { return byMeta(a.Meta, b.Meta) })
	slices.SortFunc(s.RoleBindings, func(a, b *secureauditv1.RoleBinding) int { return byMeta(a.Meta, b.Meta) })
	slices.SortFunc(s.ClusterRoleBindings, func(a, b *secureauditv1.ClusterRoleBinding) int { return byMeta(a.Meta, b.Meta) })
	slices.SortFunc(s.ServiceAccounts, func(a, b *secureauditv1.ServiceAccount) int { return byMeta(a.Meta, b.Meta) })
	slices.SortFunc(s.Workloads, func(a, b *secureauditv1.Workload) int {
		return cmp.Or(byMeta(a.Meta, b.Meta), cmp.Compare(a.Kind, b.Kind))
	})
}

// Validator checks a message against its protovalidate rules, such as
// *validation.Validator from secureaudit.dev/platform/validation.
type Validator interface {
	Validate(msg any) error
}

// objectKey identifies an object for duplicate detection and error messages.
type objectKey struct {
	kind, namespace, name string
}

// String names the object as "Kind namespace/name" or "Kind name".
func (k objectKey) String() string {
	if k.namespace == "" {
		return k.kind + " " + k.name
	}
	return k.kind + " " + k.namespace + "/" + k.name
}

// builder accumulates a snapshot, validating each object once and refusing
// duplicates.
type builder struct {
	v    Validator
	snap *Snapshot
	seen map[objectKey]string // object -> where it was read
	// kubelet is the highest kubelet version of the Nodes read.
	kubelet string
}

func newBuilder(v Validator, header *secureauditv1.SnapshotHeader) *builder {
	return &builder{v: v, snap: &Snapshot{Header: header}, seen: make(map[objectKey]string)}
}

// Bounds of the trailer's skipped map in the contract.
const (
	maxSkippedKinds  = 1000
	maxSkippedKeyLen = 253
	// otherKinds counts the kinds beyond maxSkippedKinds.
	otherKinds = "(other kinds)"
)

// skip counts an object of another kind.
func (b *builder) skip(kind string) {
	if b.snap.Skipped == nil {
		b.snap.Skipped = make(map[string]uint32)
	}
	if len(kind) > maxSkippedKeyLen {
		kind = kind[:maxSkippedKeyLen]
	}
	if _, ok := b.snap.Skipped[kind]; !ok && len(b.snap.Skipped) >= maxSkippedKinds-1 {
		kind = otherKinds
	}
	b.snap.Skipped[kind]++
}

// add validates a converted object and appends it to the snapshot. where names
// its origin (a file) in errors; it may be empty for live objects.
func (b *builder) add(where string, key objectKey, obj any) error {
	if err := b.duplicate(where, key); err != nil {
		return err
	}
	v, err := b.check(key, obj)
	if err != nil {
		return fmt.Errorf("%s: %s", prefixed(where, key), err.Error())
	}
	return b.apply(where, key, obj, v)
}

// prefixed names an object in errors: "where: Kind namespace/name".
func prefixed(where string, key objectKey) string {
	if where == "" {
		return key.String()
	}
	return where + ": " + key.String()
}

// duplicate refuses an object already seen in this snapshot.
func (b *builder) duplicate(where string, key objectKey) error {
	prev, ok := b.seen[key]
	if !ok {
		return nil
	}
	if where == "" {
		return fmt.Errorf("%s: duplicate object", key)
	}
	return fmt.Errorf("%s: duplicate object, also in %s", prefixed(where, key), prev)
}

// verdict is what checking a converted object decided: kept (the zero
// verdict), or left out and reported (unaudited, with the reason and the
// name it is reported under). It depends on the object alone, so that a
// memo can keep it beside the object (see Memo).
type verdict struct {
	unaudited bool
	// refused marks an object left out for a control character in a
	// name: it is reported under its escaped name.
	refused bool
	reason  string
}

// check decides whether obj, converted, enters the snapshot: a name with a
// control character or an object over a limit is left out (a verdict), any
// other violation of the contract is an error (the violations, without the
// object's name).
func (b *builder) check(key objectKey, obj any) (verdict, error) {
	if m, ok := obj.(proto.Message); ok {
		// A name with a control character (NUL, a newline, an escape
		// sequence) could forge lines in a report or a remediation command:
		// the object is left out, named with the characters escaped.
		if field, r, found := controlChar(m.ProtoReflect()); found {
			return verdict{unaudited: true, refused: true, reason: fmt.Sprintf("refused: %s contains the control character %U", field, r)}, nil
		}
		if n := proto.Size(m); n > MaxObjectBytes {
			return verdict{unaudited: true, reason: fmt.Sprintf("object too large to audit: %d bytes encoded, more than the %d the snapshot holds per object", n, MaxObjectBytes)}, nil
		}
	}
	if err := b.v.Validate(obj); err != nil {
		// A limit of the contract that protects memory (a length, a
		// number of items) leaves the object out and reports it; any
		// other violation is an object the API server refuses too.
		if limits, ok := onlyLimits(err); ok {
			return verdict{unaudited: true, reason: "object too large to audit: " + limits}, nil
		}
		return verdict{}, errors.New(violations(err))
	}
	return verdict{}, nil
}

// apply adds a checked object to the snapshot as its verdict says.
func (b *builder) apply(where string, key objectKey, obj any, v verdict) error {
	switch {
	case v.refused:
		b.seen[key] = where
		b.unaudited(objectKey{kind: escapeControls(key.kind), namespace: escapeControls(key.namespace), name: escapeControls(key.name)}, v.reason)
		return nil
	case v.unaudited:
		b.unaudited(key, v.reason)
		return nil
	}
	b.seen[key] = where
	s := b.snap
	switch o := obj.(type) {
	case *secureauditv1.Namespace:
		s.Namespaces = append(s.Namespaces, o)
	case *secureauditv1.Role:
		s.Roles = append(s.Roles, o)
	case *secureauditv1.ClusterRole:
		s.ClusterRoles = append(s.ClusterRoles, o)
	case *secureauditv1.RoleBinding:
		s.RoleBindings = append(s.RoleBindings, o)
	case *secureauditv1.ClusterRoleBinding:
		s.ClusterRoleBindings = append(s.ClusterRoleBindings, o)
	case *secureauditv1.ServiceAccount:
		s.ServiceAccounts = append(s.ServiceAccounts, o)
	case *secureauditv1.Workload:
		s.Workloads = append(s.Workloads, o)
	default:
		return fmt.Errorf("%s: unexpected type %T", prefixed(where, key), obj)
	}
	return nil
}

// controlChar finds a control character in the names of m: every string
// field and list of strings, at any depth, except map entries (annotations
// may hold multi-line text). It returns the field's name and the character.
func controlChar(m protoreflect.Message) (string, rune, bool) {
	var field string
	var bad rune
	check := func(fd protoreflect.FieldDescriptor, s string) bool {
		for _, r := range s {
			if unicode.IsControl(r) {
				field, bad = string(fd.Name()), r
				return true
			}
		}
		return false
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				switch fd.Kind() {
				case protoreflect.StringKind:
					found = check(fd, l.Get(i).String())
				case protoreflect.MessageKind:
					field, bad, found = controlChar(l.Get(i).Message())
				}
				if found {
					return false
				}
			}
		case fd.Kind() == protoreflect.StringKind:
			found = check(fd, v.String())
		case fd.Kind() == protoreflect.MessageKind:
			field, bad, found = controlChar(v.Message())
		}
		return !found
	})
	return field, bad, found
}

// escapeControls writes each control character of s as a Go escape, so
// that a name can be shown without acting on a terminal or a document.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			sb.WriteString(q[1 : len(q)-1])
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// unaudited records an object left out of the snapshot. It still counts as
// seen, so that a second copy is a duplicate as it would be otherwise.
func (b *builder) unaudited(key objectKey, reason string) {
	b.seen[key] = ""
	s := b.snap
	s.UnauditedCount++
	if len(s.Unaudited) >= maxUnauditedListed {
		return
	}
	s.Unaudited = append(s.Unaudited, &secureauditv1.UnauditedObject{
		Kind:      clip(key.kind, 253),
		Namespace: clip(key.namespace, maxUnauditedNamespace),
		Name:      clip(key.name, maxUnauditedName),
		Reason:    clip(reason, 1024),
	})
}

// clip cuts s to at most n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// limitRules are the protovalidate rules that bound sizes and counts.
var limitRules = []string{"string.max_len", "string.max_bytes", "repeated.max_items", "map.max_pairs", "bytes.max_len"}

// onlyLimits reports whether every violation of err is a size or count
// limit, and names them.
func onlyLimits(err error) (string, bool) {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) || len(verr.Violations) == 0 {
		return "", false
	}
	var parts []string
	for _, v := range verr.Violations {
		id := v.Proto.GetRuleId()
		if !slices.Contains(limitRules, id) {
			return "", false
		}
		msg := id
		if path := protovalidate.FieldPathString(v.Proto.GetField()); path != "" {
			msg = path + " exceeds " + id
		}
		if !slices.Contains(parts, msg) {
			parts = append(parts, msg)
		}
	}
	return strings.Join(parts, "; "), true
}

// finish sorts and returns the snapshot.
func (b *builder) finish() *Snapshot {
	b.snap.sort()
	return b.snap
}

// violations renders a validation failure on one line: "field: message; ...".
func violations(err error) string {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return err.Error()
	}
	parts := make([]string, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		msg := v.Proto.GetMessage()
		if id := v.Proto.GetRuleId(); id != "" && msg == "" {
			msg = id
		}
		if path := protovalidate.FieldPathString(v.Proto.GetField()); path != "" {
			msg = path + ": " + msg
		}
		parts = append(parts, msg)
	}
	return "invalid: " + strings.Join(parts, "; ")
}

var (
	clusterPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	clusterInvalid = regexp.MustCompile(`[^-A-Za-z0-9_.]+`)
)

// maxClusterLen is the longest cluster name the header accepts.
const maxClusterLen = 253

// ValidCluster reports whether name is acceptable as the header's cluster.
func ValidCluster(name string) bool {
	return len(name) <= maxClusterLen && clusterPattern.MatchString(name)
}

// SanitizeCluster turns any string (a file's base name, a kubeconfig context
// such as an EKS ARN) into a valid cluster name: runs of other characters
// become '-', and the name is trimmed to start and end with a letter or digit.
// It returns "cluster" if nothing is left.
func SanitizeCluster(s string) string {
	s = clusterInvalid.ReplaceAllString(s, "-")
	if len(s) > maxClusterLen {
		s = s[:maxClusterLen]
	}
	s = strings.TrimFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if s == "" {
		return "cluster"
	}
	return s
}
