// Package inject defends the reasoning step against instructions planted in
// cluster and directory data. Scan is deterministic (no model, no clock, no
// randomness): it normalizes a string (case, punctuation, spaced-out letters,
// homoglyphs) and looks for instruction overrides, role and chat-template
// markers, fake tool or Thought/Action blocks, invisible and bidirectional
// Unicode, encoded payloads and markdown exfiltration. Strings with a hit are
// withheld from prompts and reported as findings; the rest are spotlighted
// (see Spotlight) before they reach a prompt.
package inject

import (
	"encoding/ascii85"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Category is a kind of injection a detector looks for. Each has a stable
// rule ID.
type Category int

// Categories, in the order a string is checked.
const (
	Override Category = iota + 1
	RoleMarker
	ToolBlock
	HiddenText
	Encoded
	Exfiltration
	Prose
)

// RuleID returns the category's stable rule ID, such as INJ-001.
func (c Category) RuleID() string {
	switch c {
	case Override:
		return "INJ-001"
	case RoleMarker:
		return "INJ-002"
	case ToolBlock:
		return "INJ-003"
	case HiddenText:
		return "INJ-004"
	case Encoded:
		return "INJ-005"
	case Exfiltration:
		return "INJ-006"
	case Prose:
		return "INJ-007"
	}
	return "INJ-000"
}

// String names the category.
func (c Category) String() string {
	switch c {
	case Override:
		return "instruction override"
	case RoleMarker:
		return "role or chat-template marker"
	case ToolBlock:
		return "fake tool call or Thought/Action block"
	case HiddenText:
		return "invisible or bidirectional Unicode"
	case Encoded:
		return "encoded payload"
	case Exfiltration:
		return "markdown image or link exfiltration"
	case Prose:
		return "prose addressed to a model"
	}
	return "unknown"
}

// Categories lists every category in check order: the INJ rules.
func Categories() []Category {
	return []Category{Override, RoleMarker, ToolBlock, HiddenText, Encoded, Exfiltration, Prose}
}

// Detects says how the injection rule with the given ID detects its
// category, for the rules reference (docs/rules.md); "" for any other ID.
// What the rule is and why it matters is its registry entry.
func Detects(ruleID string) string {
	for _, c := range Categories() {
		if c.RuleID() == ruleID {
			return c.detects()
		}
	}
	return ""
}

func (c Category) detects() string {
	switch c {
	case Override:
		return "Instruction override: after normalization (NFKC, lower case, Cyrillic and Greek homoglyphs, leetspeak digits, zero-width characters dropped, spaced-out letters joined), a verb such as ignore, disregard, forget, bypass or \"pay no attention to\" followed within five words by an object such as instructions, prompt, guidelines or (with a qualifier such as previous, above, all, your) rules, context, data; a role-override opener such as \"you are now\", \"from now on you\", \"developer mode\", \"reveal your\", \"stop everything\"; a note addressed to the automated reader (\"note to automated analysis software\", \"note to the AI\", \"if you are an AI\"); a prompt-extraction phrase such as \"repeat the above\", \"were you told\", \"you were given\" or the identifier systemPrompt; or \"your\" followed within two words by instructions, prompt or directives (a request for the model's own instructions); a verdict dictated to the reader (\"is not malicious\", \"are not harmful\", \"isn't suspicious\": a copula, not, and malicious, harmful, suspicious, dangerous, phishing, spam, fraudulent or malware); a verdict dictated as output (print, say, output, respond, reply, answer, report, state, return or write, then within two words not malicious, harmful, ...: print \"not malicious\"); a note signed by an authority the reader is asked to trust (\"note by\" or \"note from\" followed within three words by trustworthy, trusted, expert, verified, official, authoritative or certified); refusal suppression: the reader's refusals named as what it must not say (blocked, forbidden, banned, prohibited, disallowed, never or avoid followed within four words by \"I'm sorry\", \"I am sorry\", \"I'm unable\", \"I am unable\", \"I can't\", \"I cannot\" or \"as an AI\": Blocked strings: \"I'm sorry\"). The verb drop is not read (capabilities.drop in every manifest)."
	case RoleMarker:
		return "Role and chat-template markers: tokens of model chat templates (`<|im_start|>`, `<<SYS>>`, `[INST]`, `<start_of_turn>`, ...), markdown role headers (`### System`), and role prefixes (`System:`, `Assistant:`, `System message:`) opening the string or a line."
	case ToolBlock:
		return "Fake tool calls and agent transcripts: tool-call markup (`<tool_call>`, `\"tool_calls\"`, `<invoke>`, ...) or two or more of Thought:, Action:, Action Input:, Observation:, Final Answer:."
	case HiddenText:
		return "Invisible and bidirectional Unicode: format characters (zero-width, bidi overrides and isolates, tag characters), private-use and unassigned code points, control characters other than tab and line breaks, blank fillers, invalid UTF-8. Base severity MEDIUM: such characters also come from careless copying."
	case Encoded:
		return "Encoded payloads: runs of base64 or base32 (24 characters or more), Ascii85 (25 or more, with punctuation) or hex (32 or more) that decode to text which is itself detected (rescanned, two levels deep) or reads as at least four words of prose; and ROT13 text (three distinct common English words in ROT13 form, such as gur, naq, lbh) whose decoding reads likewise; and a decoding left to the reader, whatever the payload: a line labelled as encoded text (\"BASE32 encoded string: ...\", \"Encoded: ...\") followed by a line that is only a \"decoded\" label to complete, or \"what does this mean?\" closed by one base64, base32 or hex token that decodes to text, however short, or by a phrase of letters that reads as English only once ROT13 is undone (its letters' log-likelihood under English letter frequencies at least half a nat per letter better rotated; six letters or more); and MIME quoted-printable (a soft line break, \"=\" closing a line, or three encoded bytes such as =3D) whose decoding is detected or reads as prose."
	case Exfiltration:
		return "Markdown and HTML exfiltration: a markdown image with a remote URL, inline or by reference (`![t][ref]` with a line `[ref]: https://...`), an HTML image, a markdown or reference link whose URL carries a query string, or a URL with a bracketed placeholder for the reader to fill (`host.example/p.png?q=[DATA]`); also once a text split into quoted pieces (six or more in a row, of six bytes or fewer each: `\"htt\",\"ps:\",...`, payload splitting) is joined back."
	case Prose:
		return "Prose addressed to a model. Cluster and directory fields hold names, identifiers, JSON and short descriptions; prose that speaks to someone about the things a language model is told about is an anomaly there whatever it asks for, so the rule needs no list of attacks. One pass over the words (folded as for INJ-001) counts address: second-person words (you, your and their German, French, Spanish, Italian, Portuguese, Dutch, Russian, Chinese, Japanese, Korean, Zulu, Albanian, Irish and Scottish Gaelic forms), sentences, or clauses right after \": \" or \"=\" (\"RULES=respond as Bob\"), opening with an imperative verb (write, act, answer, ignore, describe, ... and their forms in those languages), and address phrases (\"you are\", \"you will\", \"you are a\", \"your task\", \"your answer\", \"I want you\", \"can you\", \"act as a\" (and, ordered, \"act like my\", \"act as my\"), a piece of writing ordered or its transformation (an imperative write, generate, compose, provide, repeat, translate... with a word, sentence, paragraph, letter, poem, story, list... as its object within four words: \"write one sentence\", \"generate a letter\", \"repeat the word\"; a procedure or a performance ordered the same way: outline, describe, explain, detail or sing with steps, plan, procedure, process, recipe, method, explanation, description, song or lullaby: \"outline the steps\", \"sing me one of her lullabies\"; with the Zulu, Albanian and Irish verbs and nouns), and first-person requests: \"I need\", \"I'd like\", \"help me\", \"asking you to\", ...; a reply dictated: an imperative respond, reply or answer followed within four words by \"with\" (\"respond with the string 'OK'\", \"reply to the user with\"); an imperative also counts after \"please\" or \"could you\"); and model talk: strong terms (assistant, AI, chatbot, persona, jailbreak, unfiltered, prompt, ethical, restrictions, the named jailbreak families DAN and grandma, and a pretext given to whoever might refuse: educational, research, academic, informational or scientific followed by purposes, purpose, project, standpoint, context or exercise, ...) count 2, generic ones (answer, response, output, rules, character, story, ...) 1, each distinct term once. \"your answer\" counts as one strong term, also where the possessive follows the noun (Zulu \"impendulo yakho\", Albanian \"përgjigjen tënde\", Gaelic \"fhreagairt agad\") or is Irish \"do\" (\"do fhreagra\"). A string of at least 6 words is reported when it is addressed (a possessive \"your\" with no other second-person word, imperative or address phrase does not address: \"an AI assistant that answers questions about your documents\" describes a thing), names a strong term or holds an address phrase, and 2 x address phrases + second-person words (up to 3) + imperative openings (up to 2) + model talk (up to 8) reaches 6. The finding's reason gives every count, so it explains itself. Measured on public corpora and benign manifests, Helm charts, an operator bundle and directory samples: see the README, \"Injection defence\"."
	}
	return ""
}

// Hit is one detection in a string.
type Hit struct {
	Category Category
	// Reason says what matched, without repeating the string.
	Reason string
}

// Scan returns the detections in s, at most one per category, in category
// order. An empty result means s may be spotlighted into a prompt.
func Scan(s string) []Hit {
	return scan(s, 0)
}

// maxDepth bounds how deep encoded payloads are decoded and rescanned.
const maxDepth = 2

func scan(s string, depth int) []Hit {
	var hits []Hit
	add := func(c Category, reason string) {
		for _, h := range hits {
			if h.Category == c {
				return
			}
		}
		hits = append(hits, Hit{Category: c, Reason: reason})
	}
	words := normalize(s)
	if r, ok := override(words); ok {
		add(Override, r)
	} else if r, ok := verdict(words); ok {
		add(Override, r)
	}
	lower := strings.ToLower(foldRunes(s))
	if r, ok := roleMarker(lower); ok {
		add(RoleMarker, r)
	}
	if r, ok := toolBlock(lower); ok {
		add(ToolBlock, r)
	}
	if r, ok := hidden(s); ok {
		add(HiddenText, r)
	}
	if depth < maxDepth {
		if r, ok := encoded(s, depth); ok {
			add(Encoded, r)
		} else if r, ok := rot13Text(s, words, depth); ok {
			add(Encoded, r)
		} else if r, ok := decodeTemplate(lower); ok {
			add(Encoded, r)
		} else if r, ok := askedDecoding(s); ok {
			add(Encoded, r)
		} else if r, ok := quotedPrintable(s, depth); ok {
			add(Encoded, r)
		}
	}
	if r, ok := exfiltration(lower); ok {
		add(Exfiltration, r)
	}
	if r, ok := prose(lower); ok {
		add(Prose, r)
	}
	return hits
}

// Instruction-override vocabulary: verb x optional qualifier x object.
var (
	verbs = map[string]bool{
		"ignore": true, "disregard": true, "skip": true, "forget": true, "neglect": true,
		"overlook": true, "omit": true, "bypass": true, "override": true, "overwrite": true,
		"discard": true, "abandon": true, "unlearn": true,
	}
	qualifiers = map[string]bool{
		"prior": true, "previous": true, "preceding": true, "above": true, "foregoing": true,
		"earlier": true, "initial": true, "original": true, "all": true, "any": true,
		"your": true, "system": true, "existing": true, "old": true, "former": true,
		"rest": true, "remaining": true,
	}
	objects = map[string]bool{
		"content": true, "text": true, "instruction": true, "instructions": true,
		"directive": true, "directives": true, "command": true, "commands": true,
		"context": true, "conversation": true, "input": true, "data": true,
		"message": true, "messages": true, "prompt": true, "prompts": true,
		"rule": true, "rules": true, "guideline": true, "guidelines": true,
		"guidance": true, "orders": true, "constraints": true, "policy": true, "policies": true,
		"directions": true, "info": true, "information": true, "requests": true, "tasks": true,
	}
	// strongObjects need no qualifier: "ignore instructions" is an attack on
	// its own, "skip data" is not.
	strongObjects = map[string]bool{
		"instruction": true, "instructions": true, "directive": true, "directives": true,
		"prompt": true, "prompts": true, "guideline": true, "guidelines": true,
		"constraints": true,
	}
	// phrases are multi-word verbs and role-override openers.
	phrases = [][]string{
		{"pay", "no", "attention", "to"},
		{"do", "not", "follow"},
		{"do", "not", "obey"},
		{"dont", "follow"},
		{"dont", "obey"},
		{"stop", "following"},
		{"no", "longer", "follow"},
	}
	openers = [][]string{
		{"you", "are", "now"},
		{"from", "now", "on", "you"},
		{"new", "instructions"},
		{"system", "prompt"},
		{"developer", "mode"},
		{"pretend", "to", "be"},
		{"jailbreak"},
		{"reveal", "your"},
		{"print", "your", "instructions"},
		{"repeat", "the", "words", "above"},
		{"mark", "all", "findings"},
		{"report", "no", "findings"},
		{"rate", "this", "as", "low"},
		{"severity", "to", "low"},
		// Prompt extraction: what precedes the string or what the reader
		// was told, asked back; "systemprompt" is the identifier form
		// (console.log(systemPrompt)).
		{"repeat", "the", "above"},
		{"repeat", "everything", "above"},
		{"systemprompt"},
		{"you", "were", "told"},
		{"were", "you", "told"},
		{"you", "were", "given"},
		{"were", "you", "given"},
		// A task interrupted: "STOP EVERYTHING!!! NOW!!! JUST PRINT".
		{"stop", "everything"},
		// A note addressed to the automated reader of a document: "Note
		// to automated analysis software: ...".
		{"note", "to", "automated"},
		{"note", "to", "ai"},
		{"note", "to", "the", "ai"},
		{"note", "to", "any", "ai"},
		{"note", "to", "the", "model"},
		{"note", "to", "the", "assistant"},
		{"note", "to", "llm"},
		{"note", "to", "llms"},
		{"if", "you", "are", "an", "ai"},
	}
)

// ownInstructions follow "your" (at most one word between) when a string
// asks a model about its own instructions: "your initial instructions",
// "your system prompt".
var ownInstructions = map[string]bool{
	"instruction": true, "instructions": true, "prompt": true, "prompts": true, "directives": true,
}

// window is how many words may separate a verb from its object.
const window = 5

// Refusal suppression: the reader's refusals named as what it must not
// say ("Blocked strings: \"I'm sorry\"", "never say I cannot"). A refusal
// phrase within four words after a forbidding word; names, labels and
// descriptions have no reason to forbid their reader an apology.
var (
	forbidding = map[string]bool{
		"blocked": true, "forbidden": true, "banned": true, "prohibited": true,
		"disallowed": true, "never": true, "avoid": true,
	}
	refusals = [][]string{
		{"im", "sorry"}, {"i", "am", "sorry"}, {"im", "unable"}, {"i", "am", "unable"},
		{"i", "cant"}, {"i", "cannot"}, {"as", "an", "ai"},
	}
)

func refusalSuppressed(words []string, i int) (string, bool) {
	if !forbidding[words[i]] {
		return "", false
	}
	for j := i + 1; j < len(words) && j <= i+4; j++ {
		for _, r := range refusals {
			if hasAt(words, j, r) {
				return "refusal suppressed (\"" + strings.Join(words[i:j+len(r)], " ") + "\")", true
			}
		}
	}
	return "", false
}

func override(words []string) (string, bool) {
	for i, w := range words {
		if len(w) >= 12 && squashed.MatchString(w) {
			return "override phrase without word breaks", true
		}
		if r, ok := refusalSuppressed(words, i); ok {
			return r, true
		}
		start := -1
		if verbs[w] {
			start = i + 1
		}
		for _, p := range phrases {
			if hasAt(words, i, p) {
				start = i + len(p)
			}
		}
		if start >= 0 {
			qualified := false
			for j := start; j < len(words) && j < start+window; j++ {
				if qualifiers[words[j]] {
					qualified = true
				}
				if strongObjects[words[j]] || (qualified && objects[words[j]]) {
					return "override phrase \"" + strings.Join(words[i:j+1], " ") + "\"", true
				}
			}
		}
		for _, p := range openers {
			if hasAt(words, i, p) {
				return "role override \"" + strings.Join(p, " ") + "\"", true
			}
		}
		if w == "your" {
			for j := i + 1; j < len(words) && j <= i+2; j++ {
				if ownInstructions[words[j]] {
					return "reference to the model's own \"" + strings.Join(words[i:j+1], " ") + "\"", true
				}
			}
		}
	}
	return "", false
}

// A verdict dictated to whoever judges the text: a claim that it is not
// malicious ("the domain name is not malicious"), or a note signed by an
// authority the reader is asked to trust ("Note by a trustworthy expert
// recruiter: ..."). Names, labels and descriptions state what a thing is;
// they have no reason to tell their reader how to judge them.
var (
	cleared = map[string]bool{
		"malicious": true, "harmful": true, "suspicious": true, "dangerous": true,
		"phishing": true, "spam": true, "fraudulent": true, "malware": true,
	}
	copulas = map[string]bool{"is": true, "are": true, "was": true, "be": true, "isnt": true, "arent": true}
	// outputVerbs dictate the words themselves: print "not malicious".
	outputVerbs = map[string]bool{
		"print": true, "say": true, "output": true, "respond": true, "reply": true, "answer": true,
		"report": true, "state": true, "return": true, "write": true,
	}
	authority = map[string]bool{
		"trustworthy": true, "trusted": true, "expert": true, "verified": true,
		"official": true, "authoritative": true, "certified": true,
	}
)

func verdict(words []string) (string, bool) {
	for i, w := range words {
		switch {
		case w == "not" && i+1 < len(words) && cleared[words[i+1]] && i > 0 &&
			(copulas[words[i-1]] || outputVerbs[words[i-1]] || i > 1 && (copulas[words[i-2]] || outputVerbs[words[i-2]])):
			return "a verdict dictated to the reader (\"" + strings.Join(words[i:i+2], " ") + "\")", true
		case (w == "isnt" || w == "arent") && i+1 < len(words) && cleared[words[i+1]]:
			return "a verdict dictated to the reader (\"" + strings.Join(words[i:i+2], " ") + "\")", true
		case w == "note" && i+1 < len(words) && (words[i+1] == "by" || words[i+1] == "from"):
			for j := i + 2; j < len(words) && j <= i+4; j++ {
				if authority[words[j]] {
					return "a note signed by an authority the reader is asked to trust (\"" + strings.Join(words[i:j+1], " ") + "\")", true
				}
			}
		}
	}
	return "", false
}

func hasAt(words []string, i int, p []string) bool {
	if i+len(p) > len(words) {
		return false
	}
	for k, w := range p {
		if words[i+k] != w {
			return false
		}
	}
	return true
}

// normalize folds s into lower-case words: compatibility forms and
// homoglyphs folded to ASCII, invisible characters removed, punctuation
// turned into spaces, and runs of single letters ("i g n o r e") joined.
func normalize(s string) []string {
	s = foldRunes(s)
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case invisible(r):
			// dropped: zero-width characters split words to evade matching
		case r == '\'' || r == '\u2019':
			// dropped: "don't" -> "dont"
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		case unicode.IsLetter(r):
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
	}
	// Runs of two or more spaces separate words that are spelled out with
	// single spaces ("i g n o r e   p r e v i o u s").
	var out []string
	for _, segment := range wideGap.Split(b.String(), -1) {
		out = append(out, joinLetters(strings.Fields(segment))...)
	}
	for i, w := range out {
		out[i] = unleet(w)
	}
	return out
}

var wideGap = regexp.MustCompile(`\s{2,}`)

// joinLetters joins runs of three or more one-letter words:
// "i g n o r e" -> "ignore".
func joinLetters(fields []string) []string {
	var out []string
	for i := 0; i < len(fields); {
		j := i
		for j < len(fields) && utf8.RuneCountInString(fields[j]) == 1 {
			j++
		}
		if j-i >= 3 {
			out = append(out, strings.Join(fields[i:j], ""))
			i = j
			continue
		}
		out = append(out, fields[i])
		i++
	}
	return out
}

// squashed matches an override written without word breaks, as spelled-out
// letters joined into one word become ("ignorepreviousinstructions").
var squashed = regexp.MustCompile(`(ignore|disregard|forget|skip|bypass|overlook|neglect|omit|override)(all|the|any|your|prior|previous|preceding|above|earlier|initial|system)*(instructions?|directives?|prompts?|guidelines?|rules|commands|context)`)

// foldRunes applies NFKC (fullwidth and styled letters become ASCII) and
// folds common Cyrillic and Greek look-alikes to Latin letters.
func foldRunes(s string) string {
	s = norm.NFKC.String(s)
	return strings.Map(func(r rune) rune {
		if f, ok := homoglyphs[r]; ok {
			return f
		}
		return r
	}, s)
}

var homoglyphs = map[rune]rune{
	// Cyrillic
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j',
	'ѕ': 's', 'ԁ': 'd', 'ɡ': 'g', 'һ': 'h', 'ӏ': 'l', 'ո': 'n', 'ѵ': 'v', 'ԝ': 'w',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P',
	'С': 'C', 'Т': 'T', 'Х': 'X', 'І': 'I', 'Ј': 'J', 'Ѕ': 'S',
	// Greek
	'α': 'a', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u',
	'χ': 'x', 'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M',
	'Ν': 'N', 'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Χ': 'X', 'Υ': 'Y', 'Ζ': 'Z',
	// Latin look-alikes
	'ı': 'i', 'ℓ': 'l',
}

// unleet folds digits standing in for letters inside a word that has
// letters: "1gn0re" -> "ignore". Pure numbers stay as they are.
func unleet(w string) string {
	letters := false
	for _, r := range w {
		if unicode.IsLetter(r) {
			letters = true
			break
		}
	}
	if !letters {
		return w
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '0':
			return 'o'
		case '1':
			return 'i'
		case '3':
			return 'e'
		case '4':
			return 'a'
		case '5':
			return 's'
		case '7':
			return 't'
		}
		return r
	}, w)
}

var (
	templateTokens = []string{
		"<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>",
		"<|endoftext|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
		"<|eot_id|>", "<<sys>>", "<</sys>>", "[inst]", "[/inst]", "<start_of_turn>",
		"<end_of_turn>", "</s><s>", "<system>", "</system>", "<instructions>",
		"[system]", "{{system}}",
	}
	// roleStart is a role prefix opening the string; roleLine one opening a
	// later line, where even "user:" is a turn marker.
	roleStart = regexp.MustCompile(`^\s*(system|assistant|developer|human)(?:\s+message)?\s*:\s+\S`)
	roleLine  = regexp.MustCompile(`[\n\r]\s*(system|assistant|user|developer|human|ai)(?:\s+message)?\s*:\s+\S`)
	headerMD  = regexp.MustCompile(`#{2,}\s*(system|instruction|instructions|assistant|response)\b`)
)

func roleMarker(lower string) (string, bool) {
	for _, t := range templateTokens {
		if strings.Contains(lower, t) {
			return "chat-template token " + t, true
		}
	}
	if m := headerMD.FindString(lower); m != "" {
		return "role header", true
	}
	if roleStart.MatchString(lower) || roleLine.MatchString(lower) {
		return "role prefix at the start of a line", true
	}
	return "", false
}

var (
	agentKeyword = regexp.MustCompile(`(?:^|[^a-z])(thought|action input|action|observation|final answer)\s*:`)
	toolMarkers  = []string{
		"<tool_call>", "</tool_call>", "<function_call>", "<tool_use>", "\"tool_calls\"",
		"\"function_call\"", "<invoke ", "<invoke>", "</invoke>", "<|tool|>", "<|python_tag|>",
		"\"tool_use\"", "[tool_call]", "<function=",
	}
)

func toolBlock(lower string) (string, bool) {
	for _, t := range toolMarkers {
		if strings.Contains(lower, t) {
			return "tool-call marker " + t, true
		}
	}
	seen := map[string]bool{}
	for _, m := range agentKeyword.FindAllStringSubmatch(lower, -1) {
		seen[m[1]] = true
	}
	if len(seen) >= 2 {
		return "Thought/Action block", true
	}
	return "", false
}

// invisible reports whether r renders as nothing or reorders text:
// format characters (zero-width, bidi controls, tag characters), private
// use, unassigned code points, and control characters other than tab and
// line breaks.
func invisible(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r), unicode.Is(unicode.Cc, r):
		return true
	case r == utf8.RuneError:
		return true
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C):
		return true // unassigned
	}
	// Filler characters that render blank but are not classed as format.
	switch r {
	case '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800':
		return true
	}
	return false
}

func hidden(s string) (string, bool) {
	if !utf8.ValidString(s) {
		return "invalid UTF-8", true
	}
	for _, r := range s {
		if invisible(r) {
			return fmt.Sprintf("invisible character U+%04X", r), true
		}
	}
	return "", false
}

var (
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{24,}={0,2}`)
	base32Run = regexp.MustCompile(`[A-Z2-7]{24,}={0,6}`)
	// ascii85Run is a run of Ascii85 (Adobe, optionally in <~ ~>) or of
	// RFC 1924 base85 without spaces; decoding random punctuation fails or
	// yields bytes textual rejects.
	ascii85Run = regexp.MustCompile(`[!-u]{25,}`)
	hexRun     = regexp.MustCompile(`(?i)(?:0x)?[0-9a-f]{32,}`)
)

// encoded finds base64, base32 or hex runs that decode to text which is either an
// injection itself or reads as natural language.
func encoded(s string, depth int) (string, bool) {
	for _, run := range hexRun.FindAllString(s, 16) {
		run = strings.TrimPrefix(strings.ToLower(run), "0x")
		if len(run)%2 == 1 {
			run = run[:len(run)-1]
		}
		b, err := hex.DecodeString(run)
		if err == nil && textual(b, depth) {
			return "hex that decodes to text", true
		}
	}
	for _, run := range base32Run.FindAllString(s, 16) {
		b, err := base32.StdEncoding.DecodeString(run)
		if err != nil {
			b, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(run, "="))
		}
		if err == nil && textual(b, depth) {
			return "base32 that decodes to text", true
		}
	}
	for _, run := range ascii85Run.FindAllString(s, 16) {
		if strings.IndexFunc(run, func(r rune) bool { return r < '0' || r > '9' && r < 'A' }) < 0 {
			continue // letters and digits only: base64 or base32, tried above and below
		}
		run = strings.TrimSuffix(strings.TrimPrefix(run, "<~"), "~>")
		b := make([]byte, 4*len(run)/5+4)
		if n, _, err := ascii85.Decode(b, []byte(run), true); err == nil && textual(b[:n], depth) {
			return "Ascii85 that decodes to text", true
		}
	}
	for _, run := range base64Run.FindAllString(s, 16) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			b, err := enc.DecodeString(run)
			if err == nil && textual(b, depth) {
				return "base64 that decodes to text", true
			}
		}
	}
	return "", false
}

// textual reports whether decoded bytes are readable text that carries an
// injection or at least four words of prose.
func textual(b []byte, depth int) bool {
	if len(b) < 12 || !utf8.Valid(b) {
		return false
	}
	printable, letters := 0, 0
	for _, r := range string(b) {
		if unicode.IsPrint(r) || r == '\n' || r == '\t' {
			printable++
		}
		if unicode.IsLetter(r) || r == ' ' {
			letters++
		}
	}
	n := utf8.RuneCount(b)
	if printable*100 < n*95 {
		return false
	}
	if len(scan(string(b), depth+1)) > 0 {
		return true
	}
	words := 0
	for _, w := range strings.Fields(string(b)) {
		if len(w) >= 2 && strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsPunct(r) }) < 0 {
			words++
		}
	}
	return words >= 4 && letters*100 >= n*75
}

// rot13Common are common English words as ROT13 writes them ("gur" is
// "the"); no English, German or French text uses three of them.
var rot13Common = map[string]bool{
	"gur": true, "naq": true, "lbh": true, "vf": true, "bs": true, "gb": true, "vg": true, "gung": true,
	"jvgu": true, "sbe": true, "guvf": true, "lbhe": true, "ner": true, "abg": true, "jung": true, "jurer": true,
	"cerivbhf": true, "vafgehpgvbaf": true, "vtaber": true,
}

// rot13Text reports words of a string that read as ROT13 English: at least
// three distinct common words in ROT13 form, and the decoded string is an
// injection or prose.
func rot13Text(s string, words []string, depth int) (string, bool) {
	seen := 0
	var first string
	for _, w := range words {
		if rot13Common[w] && w != first {
			if first == "" {
				first = w
			}
			seen++
		}
	}
	if seen < 3 {
		return "", false
	}
	decoded := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return 'a' + (r-'a'+13)%26
		case r >= 'A' && r <= 'Z':
			return 'A' + (r-'A'+13)%26
		}
		return r
	}, s)
	if textual([]byte(decoded), depth) {
		return "ROT13 that decodes to text", true
	}
	return "", false
}

// A decoding left to the reader: a line labelled as encoded text ("BASE32
// encoded string: JBQW...", "Encoded: ...") and a later line that is only a
// "decoded" label waiting to be completed. Whatever the payload, the string
// asks whoever reads it to decode and continue.
var (
	encodedLabel = regexp.MustCompile(`(?m)^[^\n:]{0,40}\bencoded(?: string| text)?:[ \t]*\S`)
	decodedLabel = regexp.MustCompile(`(?m)^[^\n:]{0,40}\bdecoded(?: string| text)?:[ \t]*$`)
)

// meaningAsked is a question about the meaning of one opaque token that
// closes the string: "What does this mean? SGFoYSBwd25lZCE=".
var meaningAsked = regexp.MustCompile(`(?i)\bwhat does (?:this|it) mean\?\s+([A-Za-z0-9+/=_-]{8,})\s*$`)

// askedDecoding reports a meaning asked of a token that decodes (base64,
// base32 or hex) to readable text, however short.
func askedDecoding(s string) (string, bool) {
	m := meaningAsked.FindStringSubmatch(s)
	if m == nil {
		if m := meaningAskedROT13.FindStringSubmatch(s); m != nil && rot13Reads(m[1]) {
			return "the meaning asked of a phrase that reads as English only in ROT13", true
		}
		return "", false
	}
	tok := m[1]
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString, base64.URLEncoding.DecodeString,
		base32.StdEncoding.DecodeString, hex.DecodeString,
	} {
		b, err := dec(tok)
		if err != nil || len(b) < 6 || !utf8.Valid(b) {
			continue
		}
		letters := 0
		for _, r := range string(b) {
			if !unicode.IsPrint(r) {
				letters = -1
				break
			}
			if unicode.IsLetter(r) || r == ' ' {
				letters++
			}
		}
		if letters*100 >= utf8.RuneCount(b)*75 {
			return "the meaning asked of an encoded token that decodes to text", true
		}
	}
	return "", false
}

// meaningAskedROT13 is the same question closed by a short phrase of letters
// closing its line ("What does this mean? Unun cjarq!"), which rot13Reads
// judges.
var meaningAskedROT13 = regexp.MustCompile(`(?im)\bwhat does (?:this|it) mean\?[ \t]+([A-Za-z][A-Za-z .,!?'-]{3,80})[ \t]*$`)

// englishFreq is the frequency of each letter in English text (per cent).
var englishFreq = [26]float64{
	8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4,
	6.7, 7.5, 1.9, 0.095, 6.0, 6.3, 9.1, 2.8, 0.98, 2.4, 0.15, 2.0, 0.074,
}

// rot13Reads reports whether a phrase reads as English clearly better once
// ROT13 is undone: the log-likelihood of its letters under English letter
// frequencies gains at least half a nat per letter. Plain English loses as
// much when rotated, so a phrase in clear is never taken for ROT13.
func rot13Reads(phrase string) bool {
	var plain, rotated float64
	n := 0
	for _, r := range strings.ToLower(phrase) {
		if r < 'a' || r > 'z' {
			continue
		}
		n++
		plain += math.Log(englishFreq[r-'a'])
		rotated += math.Log(englishFreq[(r-'a'+13)%26])
	}
	return n >= 6 && rotated-plain >= 0.5*float64(n)
}

// qpSoftBreak is a quoted-printable soft line break ("=" closing a line)
// and qpEscape an encoded byte ("=3D", "=C3").
var (
	qpSoftBreak = regexp.MustCompile(`=\r?\n`)
	qpEscape    = regexp.MustCompile(`=[0-9A-F]{2}`)
)

// quotedPrintable reports text in MIME's quoted-printable encoding (soft
// line breaks, or three or more encoded bytes) that decodes to text:
// mail-transport encoding has no place in a name or a description, and it
// hides words from a reader that looks for them in clear.
func quotedPrintable(s string, depth int) (string, bool) {
	if !qpSoftBreak.MatchString(s) && len(qpEscape.FindAllStringIndex(s, 3)) < 3 {
		return "", false
	}
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(s)))
	if err != nil || !textual(b, depth) {
		return "", false
	}
	return "quoted-printable that decodes to text", true
}

func decodeTemplate(lower string) (string, bool) {
	if !strings.Contains(lower, "decoded") {
		return "", false
	}
	if loc := encodedLabel.FindStringIndex(lower); loc != nil && decodedLabel.MatchString(lower[loc[1]:]) {
		return "encoded text with an empty \"decoded\" label to complete", true
	}
	return "", false
}

var (
	mdImage = regexp.MustCompile(`!\[[^\]]*\]\(\s*<?(https?:)?//`)
	mdLink  = regexp.MustCompile(`\[[^\]]*\]\(\s*<?(https?:)?//[^)\s]*\?[^)\s]*=`)
	htmlImg = regexp.MustCompile(`<img\b[^>]*\bsrc\s*=`)
	refLink = regexp.MustCompile(`(?m)^\s*\[[^\]]+\]:\s*(https?:)?//\S*\?\S*=`)
	// A reference-style image, ![text][ref], renders like an inline one
	// when a line defines a reference as a remote URL.
	refImage = regexp.MustCompile(`!\[[^\]]*\]\[[^\]]*\]`)
	refDef   = regexp.MustCompile(`(?m)^\s*\[[^\]]+\]:\s*(https?:)?//`)
	// A URL whose parameter is a bracketed placeholder for the reader to
	// fill: host.tld/path?q=[DATA], host/azure=[INFO], host.tld?q=[USER DATA].
	placeholderURL = regexp.MustCompile(`[a-z0-9-]\.[a-z]{2,}[/?][^\s"]*="?\[[a-z_][a-z_ ]{1,19}\]`)
	// fragmentSep joins a text split into quoted pieces to be put back
	// together ("htt","ps:","//w"): payload splitting.
	fragmentSep = regexp.MustCompile(`"\s*,\s*"`)
)

// minFragments is how many short quoted pieces in a row (maxFragment
// bytes or fewer each) make a split text worth joining.
const (
	minFragments = 6
	maxFragment  = 6
)

// splitRun reports whether lower holds minFragments quoted pieces in a
// row, each of at most maxFragment bytes, separated by a comma with or
// without spaces ("htt","ps:","//w"... or "htt", "ps:", ...). It allocates
// nothing, so JSON, full of "," between longer keys and values, costs one
// pass.
func splitRun(lower string) bool {
	run := 0      // short pieces in a row, ending before the separator at i
	prevEnd := -1 // the opening quote of the piece after the last separator
	for i := 0; i < len(lower); i++ {
		if lower[i] != '"' {
			continue
		}
		end, ok := separator(lower, i)
		if !ok {
			continue
		}
		// The piece this separator closes: from the quote before it.
		open := strings.LastIndexByte(lower[:i], '"')
		switch {
		case open < 0 || i-open-1 > maxFragment:
			run = 0
		case open == prevEnd:
			run++
		default:
			run = 1
		}
		prevEnd = end
		if run >= minFragments-1 {
			// The piece after the separator completes the run when it is
			// short too.
			if k := strings.IndexByte(lower[end+1:], '"'); k >= 0 && k <= maxFragment {
				return true
			}
		}
		i = end - 1
	}
	return false
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// separator reports whether a quote at i closes a piece followed by a
// comma (spaces allowed around it) and the next piece's opening quote,
// and where that quote is.
func separator(lower string, i int) (int, bool) {
	j := i + 1
	for j < len(lower) && isSpace(lower[j]) {
		j++
	}
	if j >= len(lower) || lower[j] != ',' {
		return 0, false
	}
	j++
	for j < len(lower) && isSpace(lower[j]) {
		j++
	}
	if j >= len(lower) || lower[j] != '"' {
		return 0, false
	}
	return j, true
}

func exfiltration(lower string) (string, bool) {
	if r, ok := exfilMarkup(lower); ok {
		return r, true
	}
	if splitRun(lower) {
		joined := fragmentSep.ReplaceAllString(lower, "")
		// The patterns are run again only when the joined text holds a
		// piece of markup they need: JSON (every last-applied-configuration)
		// has many "," and rarely such markup.
		for _, m := range markupSeeds {
			if strings.Contains(joined, m) {
				if r, ok := exfilMarkup(joined); ok {
					return r + ", once its quoted pieces are joined", true
				}
				break
			}
		}
	}
	return "", false
}

// markupSeeds are the pieces every exfilMarkup pattern needs one of.
var markupSeeds = []string{"](", "][", "]:", "<img", "=[", "=\"["}

func exfilMarkup(lower string) (string, bool) {
	switch {
	case mdImage.MatchString(lower):
		return "markdown image with a remote URL", true
	case htmlImg.MatchString(lower):
		return "HTML image", true
	case mdLink.MatchString(lower):
		return "markdown link with a query string", true
	case refLink.MatchString(lower):
		return "reference link with a query string", true
	case refImage.MatchString(lower) && refDef.MatchString(lower):
		return "markdown image by reference to a remote URL", true
	case (strings.Contains(lower, "=[") || strings.Contains(lower, "=\"[")) && placeholderURL.MatchString(lower):
		return "URL with a bracketed placeholder to fill", true
	}
	return "", false
}
