package render

import (
	"errors"
	"regexp"
	"slices"
	"strings"
)

// fixView is a remediation as the reader sees it: the explanation, as
// plain text, and the commands that run exactly as written, one per line,
// for a command block. A command within a sentence is lifted into the
// block when it runs as written; one with a placeholder (NAME, KIND/NAME)
// stays in the sentence only.
type fixView struct {
	Prose    []string
	Commands []string
}

// Text is the explanation as one paragraph.
func (f fixView) Text() string { return strings.Join(f.Prose, " ") }

// Block is the commands, one per line.
func (f fixView) Block() string { return strings.Join(f.Commands, "\n") }

func newFix(remediation string) fixView {
	var fx fixView
	add := func(c string) {
		if !slices.Contains(fx.Commands, c) {
			fx.Commands = append(fx.Commands, c)
		}
	}
	for line := range strings.SplitSeq(remediation, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if c := strings.TrimPrefix(line, "$ "); commandEnd(c) == len(c) && Runnable(c) {
			add(c)
			continue
		}
		if prose, cmds, ok := commandTail(line); ok {
			// "Remove the binding. Command: kubectl ..." : the commands are
			// shown as commands, not a second time in the sentence.
			if prose != "" {
				fx.Prose = append(fx.Prose, prose)
			}
			for _, c := range cmds {
				add(c)
			}
			continue
		}
		fx.Prose = append(fx.Prose, line)
		for _, c := range embedded(line) {
			if Runnable(c) {
				add(c)
			}
		}
	}
	return fx
}

// commandLabels introduce the commands that close a remediation.
var commandLabels = []string{" Command: ", " Commands: ", "Command: ", "Commands: "}

// commandTail splits a line ending in "Command: CMD[; CMD...]" into its
// prose and its commands, when everything after the label is runnable
// commands and nothing else.
func commandTail(line string) (prose string, cmds []string, ok bool) {
	for _, label := range commandLabels {
		i := strings.LastIndex(line, label)
		if i < 0 || (label[0] != ' ' && i != 0) {
			continue
		}
		tail := strings.TrimSuffix(strings.TrimSpace(line[i+len(label):]), ".")
		for part := range strings.SplitSeq(tail, "; ") {
			part = strings.TrimSpace(part)
			if part == "" || commandEnd(part) != len(part) || !Runnable(part) {
				return "", nil, false
			}
			cmds = append(cmds, part)
		}
		return strings.TrimSpace(line[:i]), cmds, len(cmds) > 0
	}
	return "", nil, false
}

// commandStart finds where a command begins within a sentence.
var commandStart = regexp.MustCompile(`(?:^|[\s(:])((?:kubectl|az) )`)

// embedded returns the commands written within a sentence: from "kubectl "
// or "az " to the first ", ", "; ", " and ", " or ", " then ", " (", ")" or
// sentence end outside quotes.
func embedded(line string) []string {
	var out []string
	for _, m := range commandStart.FindAllStringSubmatchIndex(line, -1) {
		rest := line[m[2]:]
		out = append(out, strings.TrimSpace(rest[:commandEnd(rest)]))
	}
	return out
}

// commandTerminators end a command within a sentence.
var commandTerminators = []string{", ", "; ", " and ", " or ", " then ", " (", ")", ". ", " to ", " so ", " if ", " unless ", " when ", " because ", " after ", " before "}

func commandEnd(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
			continue
		case c == '\'' || c == '"':
			quote = c
			continue
		}
		for _, t := range commandTerminators {
			if strings.HasPrefix(s[i:], t) {
				return i
			}
		}
	}
	return len(strings.TrimRight(s, "."))
}

// kubectlVerbs are the kubectl subcommands a remediation may use.
var kubectlVerbs = []string{"annotate", "apply", "auth", "create", "delete", "describe", "edit", "get", "label", "patch", "rollout", "scale", "set"}

// placeholder matches a word that stands for something the reader must
// fill in: NAME, KIND/NAME, NAMESPACE, <name>, ...
var placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(/[A-Z][A-Z0-9_]*)*$|[<>]|\.\.\.`)

// Runnable reports whether a line is one kubectl or az invocation that
// runs as written: it splits into shell words, starts with kubectl (and a
// known subcommand) or az, and holds no placeholder.
func Runnable(line string) bool {
	words, err := ShellWords(line)
	if err != nil || len(words) < 2 {
		return false
	}
	for _, w := range words {
		if placeholder.MatchString(w) {
			return false
		}
	}
	switch words[0] {
	case "az":
		return true
	case "kubectl":
		verb := KubectlVerb(words)
		return verb != "" && slices.Contains(kubectlVerbs, verb) && argsFit(verb, positional(words))
	}
	return false
}

// positional returns a kubectl invocation's arguments after its verb,
// without flags and their values.
func positional(words []string) []string {
	var out []string
	seenVerb := false
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case slices.Contains(valueFlags, w):
			i++
		case strings.HasPrefix(w, "-"):
		case !seenVerb:
			seenVerb = true
		default:
			out = append(out, w)
		}
	}
	return out
}

// valueFlags are the kubectl flags remediation uses that take a value as
// the next word.
var valueFlags = []string{"-n", "--namespace", "--context", "--kubeconfig", "-p", "--patch", "--type", "-o", "--output", "-l", "--selector"}

// argsFit reports whether a kubectl verb has the arguments it takes: a
// kind and one name for edit and patch, a kind and names for delete, and
// keys (key=value or key-) after the object for annotate and label. A
// sentence that runs on past the command gives too many.
func argsFit(verb string, args []string) bool {
	object := 2
	if len(args) > 0 && strings.Contains(args[0], "/") {
		object = 1
	}
	switch verb {
	case "edit", "patch":
		return len(args) == object
	case "delete":
		return len(args) >= object
	case "annotate", "label":
		if len(args) <= object {
			return false
		}
		for _, k := range args[object:] {
			if !strings.Contains(k, "=") && !strings.HasSuffix(k, "-") {
				return false
			}
		}
	}
	return true
}

// KubectlVerb returns the subcommand of a kubectl invocation, skipping the
// global flags before it.
func KubectlVerb(words []string) string {
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-n" || w == "--namespace" || w == "--context" || w == "--kubeconfig":
			i++
		case strings.HasPrefix(w, "-"):
		default:
			return w
		}
	}
	return ""
}

// ShellWords splits a line as a POSIX shell would into words: single
// quotes keep everything, double quotes allow backslash escapes,
// unquoted backslashes escape the next character. Any other shell syntax
// (pipes, redirections, substitutions, separators) is an error: a
// remediation command is one plain invocation.
func ShellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`+"`", line[i+1]) >= 0 {
					i++
				} else if line[i] == '$' || line[i] == '`' {
					return nil, errors.New("substitution in double quotes")
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("unterminated double quote")
			}
			in = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(line[i])
			in = true
		case strings.IndexByte("|&;<>()$`*?[", c) >= 0 || !in && strings.IndexByte("#~{", c) >= 0:
			return nil, errors.New("shell syntax " + string(c) + " in a command")
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
