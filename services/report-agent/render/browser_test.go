package render

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var screenshot = flag.String("screenshot", "", "also write the browser test's screenshot of the HTML report to this PNG file")

// chromiumPath finds Debian's chromium. Absent, the test skips on a
// developer's machine and fails in CI, which installs it (.ci/run).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs it with apt-get install chromium")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test outside CI")
	return ""
}

// TestHTMLInBrowser loads report.html in a real headless Chromium and checks
// that it loads with no console error and no network request, that the
// severity filter hides and shows findings, that findings collapse and the
// access-review checklist counts decisions, and writes a screenshot.
func TestHTMLInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped under -short")
	}
	bin := chromiumPath(t)
	doc, err := HTML(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := "file://" + page

	bctx := startBrowser(t, bin, dir)

	var (
		mu       sync.Mutex
		problems []string
		requests []string
	)
	// Start the browser and the tab before listening, so that Listen sees
	// every event of the page's load.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == "error" || e.Type == "warning" || e.Type == "assert" {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, "log "+string(e.Entry.Level)+": "+e.Entry.Text)
			}
		case *network.EventRequestWillBeSent:
			if e.Request.URL != pageURL {
				requests = append(requests, e.Request.URL)
			}
		}
	})

	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	count := func(expr string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return n
	}
	visible := func(selector string) int {
		return count(`Array.from(document.querySelectorAll(` + jsString(selector) + `)).filter(e => e.offsetParent !== null).length`)
	}
	do("load the report", chromedp.Navigate(pageURL), chromedp.WaitReady(chromedp.CSS("#review-progress")))
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	critBefore := visible(`#permission [data-severity=critical]`)
	do("untick Critical", chromedp.Click(chromedp.CSS(`.sev-filter[value=critical]`)))
	critAfter := visible(`#permission [data-severity=critical]`)
	highAfter := visible(`#permission [data-severity=high]`)
	do("tick Critical", chromedp.Click(chromedp.CSS(`.sev-filter[value=critical]`)))
	critRestored := visible(`#permission [data-severity=critical]`)
	openBefore := count(`document.querySelectorAll("details.finding[open]").length`)
	do("expand all", chromedp.Click(chromedp.CSS(`#expand`)))
	openAfter := count(`document.querySelectorAll("details.finding[open]").length`)
	do("decide one review item", chromedp.Click(chromedp.CSS(`#review-1 input[value=revoke]`)))
	progress, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#review-progress`)))
	if err != nil {
		t.Fatalf("read the review progress: %v", err)
	}

	shot := filepath.Join(t.ArtifactDir(), "report.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the HTML report: %s (%d bytes)", shot, len(png))
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	checks := []struct {
		name      string
		got, want any
	}{
		{"console errors and warnings", problems, []string(nil)},
		{"network requests besides the page", requests, []string(nil)},
		{"critical findings shown at first", critBefore, 1},
		{"critical findings shown with Critical unticked", critAfter, 0},
		{"high findings shown with Critical unticked", highAfter, 1},
		{"critical findings shown with Critical ticked again", critRestored, 1},
		{"findings open at first (only the most important)", openBefore, 1},
		{"findings open after Expand all", openAfter, len(sampleReport().GetFindings())},
		{"review progress after one decision", progress, "Access review: 1 of 3 decided"},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("screenshot is not a PNG image (%d bytes)", len(png))
	}
}

func equalAny(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return len(as) == 0 && len(bs) == 0 || strings.Join(as, "\n") == strings.Join(bs, "\n")
	}
	return a == b
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// startBrowser starts a headless Chromium with a fresh profile under dir,
// stopped when the test ends.
func startBrowser(t *testing.T, bin, dir string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1200, 1100),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)

	return bctx
}

var screenshotOf = flag.String("screenshot-of", "", "with -screenshot: the HTML file to screenshot (first 1200x1100 pixels) instead of the test report")

// TestScreenshotOf takes the README's screenshot of a real report:
// go test -run TestScreenshotOf -screenshot-of ../../../out/report.html -screenshot ../../../docs/report.png
func TestScreenshotOf(t *testing.T) {
	if *screenshotOf == "" || *screenshot == "" {
		t.Skip("needs -screenshot-of and -screenshot")
	}
	bin := chromiumPath(t)
	page, err := filepath.Abs(*screenshotOf)
	if err != nil {
		t.Fatal(err)
	}
	bctx := startBrowser(t, bin, t.TempDir())
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+page), chromedp.WaitReady(chromedp.CSS("#review-progress"))); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
