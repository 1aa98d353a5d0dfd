package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestFleetHTMLInBrowser loads the fleet report in a real headless
// Chromium, as TestHTMLInBrowser does the cluster report: no console
// message and no network request besides the page, the trend charts drawn
// (one bar per audit of the trend), and the label filter hiding the
// clusters without the typed label.
func TestFleetHTMLInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped under -short")
	}
	bin := chromiumPath(t)
	var doc bytes.Buffer
	if err := WriteFleetHTML(&doc, sampleFleet()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "fleet.html")
	if err := os.WriteFile(page, doc.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := "file://" + page
	bctx := startBrowser(t, bin, dir)

	var (
		mu       sync.Mutex
		problems []string
		requests []string
	)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			// Any console message at all: the page logs nothing.
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			problems = append(problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			problems = append(problems, "log "+string(e.Entry.Level)+": "+e.Entry.Text)
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
	text := func(selector string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(selector)))
		if err != nil {
			t.Fatalf("read %s: %v", selector, err)
		}
		return s
	}
	do("load the fleet report", chromedp.Navigate(pageURL), chromedp.WaitReady(chromedp.CSS("#shown")))
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	rowsBefore := visible(`tr.cluster-row`)
	charts := count(`document.querySelectorAll("svg.trend").length`)
	eastBars := count(`document.querySelectorAll("#cluster-aks-east svg.trend g").length`)
	// Drawn, not only present: the chart has a rendered box.
	eastWidth := count(`Math.round(document.querySelector("#cluster-aks-east svg.trend").getBoundingClientRect().width)`)
	do("filter by environment=prod", chromedp.SendKeys(chromedp.CSS(`#label-filter`), "environment=prod"))
	rowsProd := visible(`tr.cluster-row`)
	sectionsProd := visible(`section.cluster`)
	shownProd := text(`#shown`)
	devHidden := visible(`#cluster-dev`)
	do("narrow to owner=platform-team", chromedp.SendKeys(chromedp.CSS(`#label-filter`), " owner=platform-team"))
	rowsOwner := visible(`tr.cluster-row`)

	shot := filepath.Join(t.ArtifactDir(), "fleet.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the fleet report: %s (%d bytes)", shot, len(png))

	mu.Lock()
	defer mu.Unlock()
	checks := []struct {
		name      string
		got, want any
	}{
		{"console messages, exceptions and log entries", problems, []string(nil)},
		{"network requests besides the page", requests, []string(nil)},
		{"cluster rows shown at first", rowsBefore, 3},
		{"trend charts (clusters with audits)", charts, 2},
		{"aks-east's bars (audits in its trend)", eastBars, 4},
		{"aks-east's chart width", eastWidth, 128},
		{"cluster rows with environment=prod", rowsProd, 2},
		{"cluster sections with environment=prod", sectionsProd, 2},
		{"count shown with environment=prod", shownProd, "2 of 3 shown"},
		{"dev's section with environment=prod", devHidden, 0},
		{"cluster rows with environment=prod and owner=platform-team", rowsOwner, 1},
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
