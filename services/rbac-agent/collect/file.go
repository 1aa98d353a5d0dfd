package collect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Option configures a source.
type Option func(*options)

type options struct {
	now           func() time.Time
	pageSize      int64
	serverVersion string
	maxFileSize   int64
}

// DefaultMaxFileSize bounds one snapshot file: a file larger than this is
// refused, naming it, before it is read (a 100,000-object cluster dumped by
// kubectl is well under it).
const DefaultMaxFileSize = 256 << 20

// WithMaxFileSize sets the largest snapshot file read (-max-snapshot-file-size).
func WithMaxFileSize(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxFileSize = n
		}
	}
}

func newOptions(opts []Option) options {
	o := options{now: time.Now, pageSize: defaultPageSize, maxFileSize: DefaultMaxFileSize}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithServerVersion sets the server version a snapshot file records
// (--server-version), ahead of the kubelet version of its Nodes. A live
// source asks the API server instead and ignores it.
func WithServerVersion(v string) Option {
	return func(o *options) { o.serverVersion = v }
}

// WithClock sets the clock that stamps the header's collected_at.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Files reads a snapshot from a file, or from every .yaml, .yml and .json file
// under a directory, of Kubernetes objects as `kubectl get -o yaml|json`
// writes them: single objects, lists, or multi-document YAML.
type Files struct {
	path    string
	cluster string
	v       Validator
	opts    options

	// mu serialises loads; digest is the SHA-256 of the files the cached
	// snapshot was parsed from, so unchanged files are not parsed again.
	mu     sync.Mutex
	digest [sha256.Size]byte
	cached *Snapshot
}

// NewFiles returns a source reading path (a file or directory) for the
// cluster named cluster, validating every object with v.
func NewFiles(path, cluster string, v Validator, opts ...Option) *Files {
	return &Files{path: path, cluster: cluster, v: v, opts: newOptions(opts)}
}

// Load reads the files afresh, so that a changed file is picked up. Files
// whose names and contents are those of the previous load are not parsed
// again: the previous snapshot is returned with a new header.
func (f *Files) Load(ctx context.Context) (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	files, err := snapshotFiles(f.path)
	if err != nil {
		return nil, err
	}
	header := &secureauditv1.SnapshotHeader{
		Cluster:     f.cluster,
		Source:      secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE,
		Origin:      f.path,
		CollectedAt: timestamppb.New(f.opts.now()),
	}
	contents := make([][]byte, len(files))
	sum := sha256.New()
	for i, file := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := readSnapshotFile(file, f.opts.maxFileSize)
		if err != nil {
			return nil, err
		}
		contents[i] = data
		fmt.Fprintf(sum, "%d:%s\x00%d:", len(file), file, len(data))
		sum.Write(data)
	}
	var digest [sha256.Size]byte
	sum.Sum(digest[:0])
	if f.cached != nil && digest == f.digest {
		again := *f.cached
		header.ServerVersion, header.ServerVersionSource = f.cached.Header.GetServerVersion(), f.cached.Header.GetServerVersionSource()
		again.Header = header
		return &again, nil
	}
	b := newBuilder(f.v, header)
	for i, file := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.file(file, contents[i]); err != nil {
			f.cached = nil
			return nil, err
		}
	}
	switch {
	case f.opts.serverVersion != "":
		header.ServerVersion, header.ServerVersionSource = f.opts.serverVersion, secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_FLAG
	case b.kubelet != "":
		header.ServerVersion, header.ServerVersionSource = b.kubelet, secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_NODES
	}
	snap := b.finish()
	f.cached, f.digest = snap, digest
	return snap, nil
}

// ValidVersion reports whether v reads as a Kubernetes version: v1.34,
// v1.34.2, 1.34.2, v1.30.1-gke.1329003, v1.29.3+k3s1.
func ValidVersion(v string) bool {
	_, ok := parseVersion(v)
	return ok && len(v) <= 128
}

// parseVersion reads major, minor and patch of a Kubernetes version.
func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return out, false
		}
		out[i] = n
	}
	return out, out[0] >= 1
}

// noteKubelet keeps the highest kubelet version of the Nodes read: the API
// server is at least that version (kubelets are never newer than it).
func (b *builder) noteKubelet(raw json.RawMessage) {
	var n struct {
		Status struct {
			NodeInfo struct {
				KubeletVersion string `json:"kubeletVersion"`
			} `json:"nodeInfo"`
		} `json:"status"`
	}
	if json.Unmarshal(raw, &n) != nil {
		return
	}
	v := n.Status.NodeInfo.KubeletVersion
	got, ok := parseVersion(v)
	if !ok || len(v) > 128 {
		return
	}
	if cur, _ := parseVersion(b.kubelet); b.kubelet == "" || slices.Compare(got[:], cur[:]) > 0 {
		b.kubelet = v
	}
}

// snapshotFiles returns path itself if it is a file, or the .yaml, .yml and
// .json files under it, sorted, if it is a directory.
func snapshotFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", path)
	}
	slices.Sort(files)
	return files, nil
}

// readSnapshotFile reads one snapshot file, refusing anything but a regular
// file (a named pipe would block the load forever, a device never end) and
// a file over max bytes, naming the file.
func readSnapshotFile(path string, max int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if err := regularWithin(path, info, max); err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	defer fh.Close()
	// The file may have been replaced between Stat and Open.
	if info, err = fh.Stat(); err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if err := regularWithin(path, info, max); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("snapshot file %s grew past the limit of %d bytes while read (-max-snapshot-file-size)", path, max)
	}
	return data, nil
}

func regularWithin(path string, info fs.FileInfo, max int64) error {
	if !info.Mode().IsRegular() {
		return fmt.Errorf("snapshot file %s is not a regular file (%s); give a file or a directory of files", path, describeMode(info.Mode()))
	}
	if info.Size() > max {
		return fmt.Errorf("snapshot file %s is %d bytes, over the limit of %d bytes (-max-snapshot-file-size)", path, info.Size(), max)
	}
	return nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// document is one YAML or JSON document of a file, as JSON.
type document struct {
	raw   json.RawMessage
	where string // "document 2 (line 14)" in a multi-document file, else ""
}

// file adds the objects of one file.
func (b *builder) file(name string, data []byte) error {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return fmt.Errorf("%s: UTF-16 text (a Windows shell redirect?); convert it to UTF-8", name)
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	if !utf8.Valid(data) {
		off := invalidUTF8(data)
		line, col := position(data, off)
		return fmt.Errorf("%s: line %d, column %d: invalid UTF-8", name, line, col)
	}
	docs, err := documents(name, data)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return fmt.Errorf("%s: no Kubernetes objects", name)
	}
	for _, d := range docs {
		where := name
		if d.where != "" {
			where += ": " + d.where
		}
		if err := b.object(where, d.raw, typeMeta{}); err != nil {
			return err
		}
	}
	return nil
}

// documents splits a file into documents: a stream of JSON values if it
// starts with '{' or '[', else YAML documents separated by "---" lines.
// Empty documents are dropped.
//
// apimachinery's YAMLOrJSONDecoder does the same, but reports a malformed
// YAML document with the JSON decoder's error; splitting here keeps the
// YAML parser's message and gives lines relative to the file.
func documents(name string, data []byte) ([]document, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return jsonDocuments(name, data)
	}
	return yamlDocuments(name, data)
}

func jsonDocuments(name string, data []byte) ([]document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []document
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				line, col := position(data, int(syntax.Offset))
				return nil, fmt.Errorf("%s: line %d, column %d: malformed JSON: %v", name, line, col, err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%s: malformed JSON: unexpected end of file", name)
			}
			return nil, fmt.Errorf("%s: malformed JSON: %v", name, err)
		}
		docs = append(docs, document{raw: raw})
	}
	if len(docs) > 1 {
		for i := range docs {
			docs[i].where = fmt.Sprintf("document %d", i+1)
		}
	}
	return docs, nil
}

// yamlLine finds the line number in YAML parser errors.
var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

func yamlDocuments(name string, data []byte) ([]document, error) {
	type part struct {
		text  []byte
		start int // line of the document's first line, from 1
	}
	var parts []part
	cur := part{start: 1}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, line := range lines {
		if isSeparator(line) {
			parts = append(parts, cur)
			cur = part{start: i + 2}
			continue
		}
		cur.text = append(cur.text, line...)
	}
	parts = append(parts, cur)
	var docs []document
	for i, p := range parts {
		raw, err := yaml.YAMLToJSON(p.text)
		if err != nil {
			// Make the parser's line relative to the file, not the document.
			msg := yamlLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
				n, convErr := strconv.Atoi(yamlLine.FindStringSubmatch(m)[1])
				if convErr != nil {
					return m
				}
				return "line " + strconv.Itoa(n+p.start-1)
			})
			where := ""
			if len(parts) > 1 {
				where = fmt.Sprintf(" document %d (line %d):", i+1, p.start)
			}
			return nil, fmt.Errorf("%s:%s malformed YAML: %s", name, where, msg)
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue // empty or comments only
		}
		d := document{raw: raw}
		if len(parts) > 1 {
			d.where = fmt.Sprintf("document %d (line %d)", i+1, p.start)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// isSeparator reports whether a line separates YAML documents: "---" followed
// by nothing but white space or a comment.
func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// typeMeta is all that is read of an object before its kind is known to be
// one the snapshot holds. Objects of other kinds (Secrets above all) are never
// decoded further.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func (t typeMeta) group() string {
	if g, _, ok := strings.Cut(t.APIVersion, "/"); ok {
		return g
	}
	return groupCore
}

// objectMeta is read to name an object in errors before decoding it.
type objectMeta struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// maxListDepth bounds lists nested in lists.
const maxListDepth = 4

// object adds one object, or the items of a list. def supplies apiVersion
// and kind for the items of a typed list (such as RoleBindingList), which the
// API server writes without them.
func (b *builder) object(where string, raw json.RawMessage, def typeMeta) error {
	return b.objectDepth(where, raw, def, 0)
}

func (b *builder) objectDepth(where string, raw json.RawMessage, def typeMeta, depth int) error {
	p := b.read(where, raw, def)
	return b.enter(&p, depth)
}

// readObject is what one object's bytes alone say: its kind, name and
// converted form and the verdict on it, or the error reading it. read
// computes it without touching the builder's state, so that the items of a
// list are read in parallel; enter then adds them in order, as reading them
// one by one would.
type readObject struct {
	where string
	raw   json.RawMessage
	tm    typeMeta
	err   error // the object's error, as objectDepth returns it
	list  bool  // a list: its items are read by enter
	// collect converts an object of a kind the snapshot holds; nil for
	// other kinds.
	collect collector
	key     objectKey
	// tooLarge marks an object over maxRawObjectBytes: not converted
	// unless it is a duplicate (the duplicate is the error).
	tooLarge bool
	obj      any
	v        verdict
	checkErr error
}

func (b *builder) read(where string, raw json.RawMessage, def typeMeta) readObject {
	p := readObject{where: where, raw: raw}
	if t := jsonType(raw); t != "object" {
		p.err = fmt.Errorf("%s: not a Kubernetes object: a %s, not a mapping", where, t)
		return p
	}
	var tm typeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		p.err = fmt.Errorf("%s: not a Kubernetes object: %v", where, err)
		return p
	}
	if tm.APIVersion == "" {
		tm.APIVersion = def.APIVersion
	}
	if tm.Kind == "" {
		tm.Kind = def.Kind
	}
	switch {
	case tm.APIVersion == "" && tm.Kind == "":
		p.err = fmt.Errorf("%s: not a Kubernetes object: no apiVersion and kind", where)
		return p
	case tm.APIVersion == "":
		p.err = fmt.Errorf("%s: not a Kubernetes object: %s without apiVersion", where, tm.Kind)
		return p
	case tm.Kind == "":
		p.err = fmt.Errorf("%s: not a Kubernetes object: %s without kind", where, tm.APIVersion)
		return p
	}
	p.tm = tm
	if strings.HasSuffix(tm.Kind, "List") {
		p.list = true
		return p
	}
	collect, ok := collectors[groupKind{tm.group(), tm.Kind}]
	if !ok {
		return p
	}
	p.collect = collect
	var m objectMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		p.err = fmt.Errorf("%s: %s: metadata: %v", where, tm.Kind, err)
		return p
	}
	p.key = objectKey{kind: tm.Kind, namespace: m.Metadata.Namespace, name: m.Metadata.Name}
	if len(raw) > maxRawObjectBytes {
		p.tooLarge = true
		return p
	}
	obj, err := collect(raw)
	if err != nil {
		p.err = fmt.Errorf("%s: %s: %v", where, p.key, err)
		return p
	}
	p.obj = obj
	p.v, p.checkErr = b.check(p.key, obj)
	return p
}

// enter adds an object read by read to the snapshot.
func (b *builder) enter(p *readObject, depth int) error {
	if p.err != nil {
		return p.err
	}
	if p.list {
		return b.list(p.where, p.raw, p.tm, depth)
	}
	g := p.tm.group()
	if g == groupCore && p.tm.Kind == "Node" {
		// Nodes are not part of the snapshot; only their kubelet version is
		// read, for the server version.
		b.noteKubelet(p.raw)
	}
	if p.collect == nil {
		key := p.tm.Kind
		if collectedKinds[p.tm.Kind] {
			// A kind of the same name from another API group (a CRD).
			key += "." + g
		}
		b.skip(key)
		return nil
	}
	if p.tooLarge {
		if _, dup := b.seen[p.key]; !dup {
			b.unaudited(p.key, fmt.Sprintf("object too large to audit: %d bytes, more than the %d the snapshot reads per object", len(p.raw), maxRawObjectBytes))
			return nil
		}
		obj, err := p.collect(p.raw)
		if err != nil {
			return fmt.Errorf("%s: %s: %v", p.where, p.key, err)
		}
		return b.add(p.where, p.key, obj)
	}
	if err := b.duplicate(p.where, p.key); err != nil {
		return err
	}
	if p.checkErr != nil {
		return fmt.Errorf("%s: %s", prefixed(p.where, p.key), p.checkErr.Error())
	}
	return b.apply(p.where, p.key, p.obj, p.v)
}

// listWindow is the number of a list's items read in parallel before they
// are added: it bounds what is held converted but not yet added.
const listWindow = 512

func (b *builder) list(where string, raw json.RawMessage, tm typeMeta, depth int) error {
	if depth >= maxListDepth {
		return fmt.Errorf("%s: %s nested more than %d deep", where, tm.Kind, maxListDepth)
	}
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("%s: %s: %v", where, tm.Kind, err)
	}
	var def typeMeta
	if tm.Kind != "List" {
		def = typeMeta{APIVersion: tm.APIVersion, Kind: strings.TrimSuffix(tm.Kind, "List")}
	}
	// The items are decoded, converted and checked (read) on every core,
	// a window at a time, and added in order (enter): the snapshot, its
	// errors and its verdicts are those of reading them one by one. At
	// 100,000 objects this was the rbac-agent's 1.6 s of CPU on one core
	// before the first chunk could be served.
	workers := min(runtime.GOMAXPROCS(0), (len(l.Items)+63)/64)
	read := make([]readObject, min(len(l.Items), listWindow))
	for start := 0; start < len(l.Items); start += listWindow {
		window := l.Items[start:min(start+listWindow, len(l.Items))]
		read = read[:len(window)]
		b.readAll(where, start, window, def, read, workers)
		for i := range read {
			if err := b.enter(&read[i], depth+1); err != nil {
				return err
			}
			read[i] = readObject{}
		}
	}
	return nil
}

// readAll reads items (from index start of the list at where) into out,
// on the given number of goroutines.
func (b *builder) readAll(where string, start int, items []json.RawMessage, def typeMeta, out []readObject, workers int) {
	one := func(i int) {
		out[i] = b.read(fmt.Sprintf("%s: items[%d]", where, start+i), items[i], def)
	}
	if workers <= 1 {
		for i := range items {
			one(i)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				one(i)
			}
		})
	}
	wg.Wait()
}

type groupKind struct {
	group, kind string
}

// collector decodes and converts one object of a kind the snapshot holds.
type collector func(raw json.RawMessage) (any, error)

// collectors are the kinds the snapshot holds. Workload controllers are read
// only for their pod template's ServiceAccount.
var collectors = map[groupKind]collector{
	{groupCore, "Namespace"}: func(raw json.RawMessage) (any, error) {
		var o corev1.Namespace
		return decodeThen(raw, &o, func() (any, error) { return convertNamespace(&o), nil })
	},
	{groupCore, "ServiceAccount"}: func(raw json.RawMessage) (any, error) {
		var o corev1.ServiceAccount
		return decodeThen(raw, &o, func() (any, error) { return convertServiceAccount(&o), nil })
	},
	{groupRBAC, "Role"}: func(raw json.RawMessage) (any, error) {
		var o rbacv1.Role
		return decodeThen(raw, &o, func() (any, error) { return convertRole(&o), nil })
	},
	{groupRBAC, "ClusterRole"}: func(raw json.RawMessage) (any, error) {
		var o rbacv1.ClusterRole
		return decodeThen(raw, &o, func() (any, error) { return convertClusterRole(&o), nil })
	},
	{groupRBAC, "RoleBinding"}: func(raw json.RawMessage) (any, error) {
		var o rbacv1.RoleBinding
		return decodeThen(raw, &o, func() (any, error) { return convertRoleBinding(&o) })
	},
	{groupRBAC, "ClusterRoleBinding"}: func(raw json.RawMessage) (any, error) {
		var o rbacv1.ClusterRoleBinding
		return decodeThen(raw, &o, func() (any, error) { return convertClusterRoleBinding(&o) })
	},
	{groupCore, "Pod"}: func(raw json.RawMessage) (any, error) {
		var o struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     podSpec           `json:"spec"`
		}
		return decodeThen(raw, &o, func() (any, error) { return convertWorkload("Pod", &o.Metadata, &o.Spec), nil })
	},
	{groupCore, "ReplicationController"}: templateCollector("ReplicationController"),
	{groupApps, "Deployment"}:            templateCollector("Deployment"),
	{groupApps, "StatefulSet"}:           templateCollector("StatefulSet"),
	{groupApps, "DaemonSet"}:             templateCollector("DaemonSet"),
	{groupApps, "ReplicaSet"}:            templateCollector("ReplicaSet"),
	{groupBatch, "Job"}:                  templateCollector("Job"),
	{groupBatch, "CronJob"}: func(raw json.RawMessage) (any, error) {
		var o struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     struct {
				JobTemplate struct {
					Spec struct {
						Template struct {
							Spec podSpec `json:"spec"`
						} `json:"template"`
					} `json:"spec"`
				} `json:"jobTemplate"`
			} `json:"spec"`
		}
		return decodeThen(raw, &o, func() (any, error) {
			return convertWorkload("CronJob", &o.Metadata, &o.Spec.JobTemplate.Spec.Template.Spec), nil
		})
	},
}

// collectedKinds are the kind names of collectors, whatever their group.
var collectedKinds = func() map[string]bool {
	m := make(map[string]bool, len(collectors))
	for gk := range collectors {
		m[gk.kind] = true
	}
	return m
}()

// templateCollector reads a controller with a pod template at spec.template.
func templateCollector(kind string) collector {
	return func(raw json.RawMessage) (any, error) {
		var o struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     struct {
				Template struct {
					Spec podSpec `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		return decodeThen(raw, &o, func() (any, error) {
			return convertWorkload(kind, &o.Metadata, &o.Spec.Template.Spec), nil
		})
	}
}

func decodeThen(raw json.RawMessage, into any, convert func() (any, error)) (any, error) {
	if err := json.Unmarshal(raw, into); err != nil {
		return nil, fmt.Errorf("decode: %v", err)
	}
	return convert()
}

// jsonType names the type of a JSON value by its first byte.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "list"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// invalidUTF8 returns the offset of the first invalid UTF-8 sequence.
func invalidUTF8(data []byte) int {
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			return off
		}
		off += size
	}
	return len(data)
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
