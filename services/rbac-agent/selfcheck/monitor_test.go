package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestCheckParallelismSameReport checks that the report, violations and
// their order included, does not depend on how many reviews run at once,
// and that no more than the bound are in flight.
func TestCheckParallelismSameReport(t *testing.T) {
	var objs []runtime.Object
	rules := map[string][]authorizationv1.ResourceRule{}
	for i := range 40 {
		ns := fmt.Sprintf("ns-%02d", i)
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		rules[ns] = readOnly()
		if i%7 == 3 {
			rules[ns] = append(rules[ns], authorizationv1.ResourceRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"secrets"}})
		}
	}
	c := fake.NewSimpleClientset(objs...)
	var inFlight, most atomic.Int64
	c.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectRulesReview)
		r.Status.ResourceRules = append(everyoneRules(), rules[r.Spec.Namespace]...)
		return true, r, nil
	})
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = r.Spec.ResourceAttributes.Verb == "impersonate"
		return true, r, nil
	})
	one, err := Check(context.Background(), c, declared, WithParallelism(1))
	if err != nil {
		t.Fatal(err)
	}
	if most.Load() != 1 {
		t.Errorf("parallelism 1: %d reviews in flight at once", most.Load())
	}
	most.Store(0)
	many, err := Check(context.Background(), c, declared, WithParallelism(4))
	if err != nil {
		t.Fatal(err)
	}
	// The fake clientset answers one request at a time, so this bounds
	// the parallelism only; test/kube runs it against a real server.
	if m := most.Load(); m > 4 {
		t.Errorf("parallelism 4: %d reviews in flight at once", m)
	}
	if Presented(one, nil) != Presented(many, nil) {
		t.Errorf("parallel check differs:\n%s\n%s", Presented(one, nil), Presented(many, nil))
	}
	if one.Namespaces != 40 || len(one.Violations) != 6*2+3 {
		t.Errorf("report %d namespaces, violations %+v", one.Namespaces, one.Violations)
	}
}

// TestCheckFailsOnAReview checks that a failing review fails the check.
func TestCheckFailsOnAReview(t *testing.T) {
	c := fakeServer(nil, nil)
	c.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("boom")
	})
	if _, err := Check(context.Background(), c, declared); err == nil || !strings.Contains(err.Error(), "self subject rules review in") {
		t.Errorf("Check = %v, want the review's error", err)
	}
}

// switchable answers as a read-only credential until broad is set, then as
// one that reads Secrets in payments; fail makes every review fail.
type switchable struct {
	mu          sync.Mutex
	broad, fail bool
	reviews     int
}

func (s *switchable) client() *fake.Clientset {
	c := fake.NewSimpleClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}})
	c.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.reviews++
		if s.fail {
			return true, nil, errors.New("the API server is away")
		}
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectRulesReview)
		r.Status.ResourceRules = append(everyoneRules(), readOnly()...)
		if s.broad && r.Spec.Namespace == "payments" {
			r.Status.ResourceRules = append(r.Status.ResourceRules, authorizationv1.ResourceRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}})
		}
		return true, r, nil
	})
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, a.(k8stesting.CreateAction).GetObject(), nil
	})
	return c
}

func (s *switchable) set(broad, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broad, s.fail = broad, fail
}

// TestMonitor runs the monitor: nothing is presented before the first
// check, the result is presented exactly as Presented renders it, a changed
// credential file is checked again at once (a violation shows), a failure
// with the same credential keeps the previous result, and the interval
// re-runs the check.
func TestMonitor(t *testing.T) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cred, []byte("token: a"), 0o600); err != nil {
		t.Fatal(err)
	}
	sw := &switchable{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := NewMonitor(sw.client(), declared, log, WithInterval(time.Hour), WithCredential(FilesFingerprint(cred), 5*time.Millisecond))
	if got := m.Presented(); got != "" {
		t.Fatalf("presented %q before the first check", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: presented %s after %d runs", what, m.Presented(), m.Runs())
			}
			time.Sleep(time.Millisecond)
		}
	}
	passed := Presented(&Report{Namespaces: 2, Probes: len(Probes), Violations: []Violation{}}, nil)
	waitFor("first check", func() bool { return m.Presented() == passed })

	// A new credential that reads Secrets in payments.
	sw.set(true, false)
	if err := os.WriteFile(cred, []byte("token: b"), 0o600); err != nil {
		t.Fatal(err)
	}
	broad := Presented(&Report{Namespaces: 2, Probes: len(Probes), Violations: []Violation{{Namespace: "payments", Permission: "get secrets", Source: "rules"}}}, nil)
	waitFor("changed credential", func() bool { return m.Presented() == broad })
	runs := m.Runs()
	time.Sleep(50 * time.Millisecond)
	if m.Runs() != runs {
		t.Errorf("the check ran %d more times with the credential unchanged and an hour's interval", m.Runs()-runs)
	}

	// The same credential, a failed check: the violation stands.
	short := NewMonitor(sw.client(), declared, log, WithInterval(10*time.Millisecond))
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- short.Run(sctx) }()
	defer func() { scancel(); <-sdone }()
	deadline := time.Now().Add(10 * time.Second)
	for short.Presented() != broad && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	sw.set(true, true)
	before := short.Runs()
	for short.Runs() < before+3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if short.Runs() < before+3 {
		t.Fatalf("the interval did not re-run the check: %d runs", short.Runs())
	}
	if got := short.Presented(); got != broad {
		t.Errorf("after failed re-runs with the same credential presented %s, want the standing violation %s", got, broad)
	}
}
