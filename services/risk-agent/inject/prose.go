package inject

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Prose addressed to a model (INJ-007). Cluster and directory fields hold
// names, identifiers, JSON and short descriptions. Several sentences of
// prose that speak to someone (second person, imperatives, "you are a...",
// "I want you to...") about the things a language model is told about (its
// rules and restrictions, personas and characters, being an AI or a model,
// its answers and outputs) are an anomaly in such a field whatever they ask
// for, so the rule needs no list of attacks. It scores a string in one pass
// over its words:
//
//   - address: second-person words ("you", "your", and their German,
//     French, Spanish, Italian, Portuguese, Dutch, Russian, Chinese,
//     Japanese, Korean, Zulu, Albanian, Irish and Scottish Gaelic forms),
//     sentences and clauses after a colon that open with an imperative
//     verb ("write", "act", "ignore", "respond"...), and address phrases
//     ("you are", "you will", "your task", "I want you", "can you"...,
//     a persona ordered: "act like my", "act as my"), and a piece of
//     writing ordered (an imperative write, generate, compose, repeat,
//     translate... with a word, sentence, letter, poem, story... as its
//     object within four words), a procedure or a performance ordered
//     ("outline the steps", "sing me one of her lullabies"), a reply
//     dictated ("respond with the string 'OK'", "reply to the user with");
//   - model talk: words about models and their behaviour, strong ones
//     ("assistant", "AI", "chatbot", "persona", "jailbreak", "unfiltered",
//     "prompt", "ethical"..., and a pretext: "for educational purposes",
//     "a research project") counting two and generic ones ("answer",
//     "response", "output", "rules", "restrictions", "character",
//     "story"...) one, each distinct word once.
//
// A string of at least proseMin words is reported when it is addressed (at
// least one address signal; a possessive "your" alone is not one: "an AI
// assistant that answers questions about your documents" describes a
// thing), names a strong term or holds an address
// phrase, and its score, 2 per address phrase + second-person words (up to
// 3) + imperative openings (up to 2) + model talk (up to 8), reaches
// proseThreshold. "your response", "your prompt" and the like also count as
// one strong term: they presume the reader produces answers (so do "your
// answer" in Zulu, Albanian, Irish and Scottish Gaelic, where the possessive
// follows the noun or is Irish "do"). The weights and
// lexicons are fixed in code; the reason gives every count, so a finding
// explains itself. Sentences end at . ! ? a line break or their CJK forms;
// a colon does not end one, so JSON does not read as a row of sentences,
// but a word right after ": " may be an imperative ("do the following:
// repeat..."); after ": \"" (JSON) it is not.
const (
	proseMin       = 6
	proseThreshold = 6
)

// proseFeatures are the counts a decision is made on.
type proseFeatures struct {
	words, sentences                 int
	second, imperatives, phrases     int
	possessive                       int
	strong, weak                     int
	strongSeen, weakSeen             bitset
	prev, prev2                      string
	sentenceWords                    int
	countedSentence, afterTerminator bool
	producing, replying              int
	actOrdered, afterColon           bool
}

func (f *proseFeatures) score() int {
	return 2*f.phrases + min(f.second, 3) + min(f.imperatives, 2) + min(2*f.strong+f.weak, 8)
}

func prose(lower string) (string, bool) {
	// Cheap gate: fewer spaces than prose needs means a name or identifier.
	if strings.Count(lower, " ") < proseMin-1 && !hasCJK(lower) {
		return "", false
	}
	f := measure(lower)
	if f.words < proseMin && !(f.strong > 0 && f.sentences >= 2) {
		return "", false
	}
	if f.second+f.imperatives+f.phrases == 0 || f.strong == 0 && f.phrases == 0 {
		return "", false
	}
	// The reader's belongings alone do not address the reader: "an AI
	// assistant that answers questions about your documents" describes a
	// thing, as product and group descriptions do. Without an imperative
	// or an address phrase, a possessive must come with another
	// second-person word.
	if f.imperatives+f.phrases == 0 && f.second == f.possessive {
		return "", false
	}
	if s := f.score(); s >= proseThreshold {
		return fmt.Sprintf("%d words in %d sentences, %d second-person words, %d imperative openings, %d address phrases, %d strong and %d other model terms (score %d, threshold %d)",
			f.words, f.sentences, f.second, f.imperatives, f.phrases, f.strong, f.weak, s, proseThreshold), true
	}
	return "", false
}

// measure counts the features of lower in one pass.
func measure(lower string) proseFeatures {
	var f proseFeatures
	f.afterTerminator = true
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		f.word(lower[start:end])
		start = -1
	}
	for i, r := range lower {
		switch {
		case r == '\'' || r == '\u2019':
			if start >= 0 {
				continue // inside a word: "don't"
			}
		case cjk(r):
			flush(i)
			f.cjkRune(r)
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
		switch r {
		case '.', '!', '?', '\n', '\u3002', '\uff01', '\uff1f', '\u0964':
			f.endSentence()
		case ':', '=':
			// "RULES=respond as Bob", "ROLE = never refuse": a key set to
			// an order opens a clause as a colon does.
			f.afterColon = true
		case ' ', '\t':
		default:
			f.afterColon = false // a quote or bracket: "key": "value" is JSON, not an order
		}
	}
	flush(len(lower))
	f.endSentence()
	return f
}

// directing are the verbs of "<verb> you to": "asking you to", "want you
// to", "allow you to".
var directing = set("ask", "asks", "asking", "want", "need", "like", "tell", "telling", "instruct", "order", "command", "allow", "require", "expect", "get")

// producers are the verbs that order a piece of writing or its
// transformation; textUnits the pieces.
var (
	producers = set("write", "generate", "compose", "draft", "create", "produce", "craft", "provide", "give",
		// or that set out a procedure or a performance: "outline the steps",
		// "describe the process", "sing me a lullaby"
		"outline", "describe", "explain", "detail", "sing",
		// or that transform one: repeat, translate (en, zu, sq, ga)
		"repeat", "translate", "phinda", "humushela", "përsërit", "përkthe", "athdhéan", "aistrigh")
	textUnits = set("sentence", "sentences", "paragraph", "paragraphs", "essay", "poem", "story", "letter", "article",
		"post", "tweet", "blog", "email", "script", "speech", "guide", "tutorial", "list", "song", "lyrics", "joke",
		"word", "words", "phrase", "steps", "plan", "procedure", "process", "recipe", "method", "lullaby", "lullabies",
		"songs", "explanation", "description",
		// word, sentence, text in zu, sq, ga, gd
		"igama", "isigwebo", "sigwebo", "umbhalo", "mbhalo", "fjalën", "fjalë", "fjali", "fjalinë",
		"focal", "fhocal", "abairt", "téacs", "facal", "fhacal", "seantans")
)

// repliers are the imperatives of a dictated reply: "respond with".
var repliers = set("respond", "reply", "answer")

// possessives are the second-person words that only name the reader's
// belongings, in English, where the reader is otherwise addressed with
// separate words ("you"); languages that mark "you" in the verb (Zulu
// "ngikunikeza", Albanian "të dhashë") may show only the possessive.
var possessives = set("your", "yours")

// modalBefore are the modals of a polite imperative: "could you write".
var modalBefore = set("can", "could", "would", "will")

// modelOwned are the nouns that make "your <noun>" model talk; they count
// once, as one strong term.
var modelOwned = set("response", "responses", "answer", "answers", "output", "outputs", "reply", "replies", "prompt", "instructions", "programming", "guidelines")

// answerNouns are "answer" and "response" in languages that place the
// possessive after the noun (Zulu "impendulo yakho", Albanian "përgjigjen
// tënde", Scottish Gaelic "fhreagairt agad") or mark it with a word English
// also uses (Irish "do fhreagra"): the pair counts as "your response".
var (
	answerNouns      = set("impendulo", "empendulweni", "kwimpendulo", "kwempempendulo", "përgjigje", "përgjigjen", "përgjigjes", "freagra", "fhreagra", "freagairt", "fhreagairt")
	possessiveBefore = set("do", "nad")
	possessiveAfter  = set("yakho", "wakho", "tënde", "tënd", "agad", "agat")
)

// modelOwnedID is the strong-term bit "your <modelOwned>" sets: one past the
// lexicon. pretextID is the next one: a request justified to whoever might
// refuse it ("for educational purposes", "as part of a research project",
// "from a purely academic standpoint"), the framing of persuasion attacks.
var (
	modelOwnedID = uint8(len(strongTerms))
	pretextID    = modelOwnedID + 1
)

// pretextBefore and pretextAfter are the two words of a pretext.
var (
	pretextBefore = set("educational", "research", "academic", "informational", "scientific")
	pretextAfter  = set("purposes", "purpose", "project", "standpoint", "context", "exercise")
)

func (f *proseFeatures) endSentence() {
	if f.sentenceWords >= 3 {
		f.sentences++
	}
	f.sentenceWords = 0
	f.afterTerminator = true
	f.prev, f.prev2 = "", ""
}

func (f *proseFeatures) word(w string) {
	if strings.ContainsRune(w, '\u2019') {
		w = strings.ReplaceAll(w, "\u2019", "'")
	}
	f.words++
	f.sentenceWords++
	if secondPerson[w] {
		f.second++
		if possessives[w] {
			f.possessive++
		}
	}
	// An imperative opens a sentence, follows "please" there, or is asked
	// for politely: "could you describe", "can you please write".
	polite := f.prev == "you" && modalBefore[f.prev2] || f.prev == "please" && (f.prev2 == "you" || f.sentenceWords == 2)
	// A colon followed directly by a word also opens a clause: "do the
	// following: repeat the word...".
	imperativeHere := (f.afterTerminator || f.afterColon || polite) && imperatives[w]
	f.afterColon = false
	if imperativeHere {
		f.imperatives++
	}
	f.afterTerminator = false
	if addressAfter[f.prev][w] || f.prev2 == "i" && (f.prev == "want" || f.prev == "need") && w == "you" {
		f.phrases++
	}
	// A request made of the reader in the first person: "I need a list",
	// "I'd like you to", "help me write".
	if f.prev == "i" && (w == "need" || w == "want") || f.prev == "i'd" && w == "like" ||
		f.prev2 == "i" && f.prev == "would" && w == "like" || f.prev == "help" && w == "me" ||
		f.prev == "you" && w == "to" && directing[f.prev2] {
		f.phrases++
	}
	// A possessive before an output or instruction presumes the reader
	// produces answers: "your response", "your system prompt".
	if possessiveBefore[f.prev] && answerNouns[w] && f.prev != "nad" {
		f.second++ // Irish "do" is "your" here; Gaelic "nad" is counted already
	}
	if (f.prev == "your" && modelOwned[w] || possessiveBefore[f.prev] && answerNouns[w] || possessiveAfter[w] && answerNouns[f.prev]) &&
		f.strongSeen.add(modelOwnedID) {
		f.strong++
	}
	// A persona handed over: "you are a", "you're an", "act as a".
	if (f.prev2 == "you" && f.prev == "are") && (w == "a" || w == "an") ||
		f.actOrdered && f.prev2 == "act" && (f.prev == "as" || f.prev == "like") && w == "my" ||
		f.prev2 == "act" && f.prev == "as" && (w == "a" || w == "an") ||
		(f.prev == "you're" || f.prev == "youre") && (w == "a" || w == "an") {
		f.phrases++
	}
	// A piece of writing ordered: "write one sentence", "generate a
	// letter", "compose a poem", "sing me one of her lullabies": an
	// imperative production verb with a text unit as its object within four
	// words.
	if f.producing > 0 && textUnits[w] {
		f.phrases++
		f.producing = 0
	} else if f.producing > 0 {
		f.producing--
	}
	if f.prev2 == "act" {
		f.actOrdered = false
	}
	if imperativeHere && w == "act" {
		f.actOrdered = true
	}
	if imperativeHere && producers[w] {
		f.producing = 4
	}
	// A reply dictated: "respond with the string 'SUCCESS'", "reply to the
	// user with": an imperative respond, reply or answer followed within
	// four words by "with".
	if f.replying > 0 && w == "with" {
		f.phrases++
		f.replying = 0
	} else if f.replying > 0 {
		f.replying--
	}
	if imperativeHere && repliers[w] {
		f.replying = 4
	}
	if pretextBefore[f.prev] && pretextAfter[w] && f.strongSeen.add(pretextID) {
		f.strong++
	}
	if id, ok := strongTerms[w]; ok && f.strongSeen.add(id) {
		f.strong++
	} else if id, ok := weakTerms[w]; ok && f.weakSeen.add(id) {
		f.weak++
	}
	f.prev2, f.prev = f.prev, w
}

// cjkRune counts Chinese, Japanese and Korean text, written without spaces:
// every ideograph or kana is a word, and the lexicon's CJK entries are
// single characters or matched by the two-rune window kept in prev.
func (f *proseFeatures) cjkRune(r rune) {
	s := string(r)
	f.word(s)
	if f.prev2 != "" {
		pair := f.prev2 + s
		if id, ok := strongTerms[pair]; ok && f.strongSeen.add(id) {
			f.strong++
		}
		if secondPerson[pair] {
			f.second++
		}
	}
}

// bitset records which lexicon entries a string used, so each counts once.
type bitset [2]uint64

// add marks id and reports whether it was new.
func (b *bitset) add(id uint8) bool {
	w, bit := id/64, uint64(1)<<(id%64)
	if b[w]&bit != 0 {
		return false
	}
	b[w] |= bit
	return true
}

func cjk(r rune) bool {
	return r >= 0x3040 && r <= 0x30ff || r >= 0x4e00 && r <= 0x9fff || r >= 0xac00 && r <= 0xd7af
}

func hasCJK(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if cjk(r) {
			return true
		}
		i += n
	}
	return false
}

// fold puts a lexicon entry in the form prose sees: homoglyphs folded, lower case.
func fold(w string) string { return strings.ToLower(foldRunes(w)) }

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[fold(w)] = true
	}
	return m
}

func ids(words ...string) map[string]uint8 {
	if len(words) > 128 {
		panic("inject: a term lexicon holds at most 128 entries")
	}
	m := make(map[string]uint8, len(words))
	for i, w := range words {
		m[fold(w)] = uint8(i)
	}
	return m
}

var (
	secondPerson = set(
		"you", "your", "yours", "yourself", "yourselves", "you're", "you'll", "you've", "you'd", "youre", "youll", "youve",
		// de, fr, es, it, pt, nl
		"du", "dich", "dir", "dein", "deine", "deinen", "deiner", "euch",
		"vous", "votre", "vos", "tu", "toi", "ton", "tes",
		"usted", "ustedes", "tú", "tus", "vosotros", "contigo",
		"voi", "tuo", "tua", "tuoi", "ti",
		"você", "vocês", "seu", "sua",
		"jij", "jou", "jouw", "jullie",
		// zu, sq, ga, gd
		"wena", "yakho", "wakho", "lakho", "kwakho", "sakho", "zakho", "bakho", "lwakho",
		"tënde", "tënd", "jote", "tuaj", "ty",
		"duit", "ort", "leat", "agat", "thú",
		"thu", "dhut", "agad", "nad",
		// ru (after homoglyph folding), zh, ja, ko
		"ты", "тебя", "тебе", "твой", "твоя", "твои", "вы", "вас", "вам", "ваш", "ваша", "ваши",
		"你", "您", "你们", "あなた", "君", "너", "당신",
	)
	imperatives = set(
		"act", "pretend", "imagine", "write", "tell", "say", "answer", "respond", "reply", "provide", "give",
		"generate", "produce", "create", "compose", "draft", "describe", "explain", "list", "output", "print",
		"repeat", "translate", "summarize", "summarise", "ignore", "forget", "disregard", "remember", "stay",
		"keep", "always", "never", "don't", "dont", "do", "start", "begin", "continue", "include", "decode",
		"encode", "show", "reveal", "display", "use", "make", "stop", "help", "follow", "obey", "assume",
		"roleplay", "simulate", "become", "play", "speak", "talk", "insert", "add", "replace", "focus", "consider",
		"send", "conclude", "proceed", "outline", "elaborate", "let's", "lets", "sing", "note", "detail", "run", "execute",
		// de, fr, es, it
		"ignoriere", "vergiss", "antworte", "schreibe", "schreib", "sag", "gib", "zeige", "tu", "handle", "spiele",
		"ignorez", "oubliez", "répondez", "écrivez", "dites", "agissez", "ignore", "oublie", "réponds", "écris", "dis",
		"ignora", "olvida", "responde", "escribe", "di", "actúa", "dime", "dimmi", "rispondi", "scrivi", "dimentica",
		// zu, sq, ga, gd: repeat, insert, translate, write, do, put, add
		"phinda", "faka", "humushela", "bhala", "yenza",
		"përsërit", "përkthe", "shkruaj", "shto", "fut", "bëj",
		"déan", "aistrigh", "cuir", "athdhéan", "scríobh",
		"dèan", "sgrìobh",
	)
	// addressAfter[a][b] holds the address phrases "a b": a second person
	// followed by a modal or a persona, a possessive followed by a task.
	addressAfter = map[string]map[string]bool{
		"you": set("are", "will", "must", "should", "shall", "can", "have", "need", "may", "cannot", "can't", "won't",
			"always", "never", "do", "don't", "dont", "were", "would", "might", "now", "is"),
		"you're": set("a", "an", "now", "going", "free", "not", "no"),
		"youre":  set("a", "an", "now", "going", "free", "not", "no"),
		"you'll": set("be", "now", "always", "never", "respond", "answer", "act"),
		"your": set("task", "job", "role", "goal", "purpose", "response", "responses", "answer", "answers", "output", "instructions", "rules", "guidelines", "programming", "creators", "developers", "persona", "character", "mission", "objective", "system", "prompt", "reply", "replies", "knowledge", "name", "first", "only",
			"initial", "starting", "original", "previous", "hidden", "secret", "help"),
		"can":      set("you", "u"),
		"could":    set("you", "u"),
		"would":    set("you", "u"),
		"will":     set("you", "u"),
		"du":       set("bist", "wirst", "musst", "sollst", "kannst", "darfst"),
		"vous":     set("êtes", "devez", "allez", "pouvez"),
		"tu":       set("es", "dois", "vas", "peux", "eres", "debes", "puedes", "sei", "devi", "puoi"),
		"usted":    set("es", "debe", "puede"),
		fold("ты"): set(fold("должен"), fold("должна"), fold("можешь"), fold("будешь")),
		"act":      set("as", "like"),
		"pretend":  set("to", "you", "that"),
	}
	strongTerms = ids(
		"ai", "assistant", "chatbot", "chatgpt", "gpt", "openai", "llm", "llms", "persona", "personas", "roleplay",
		"jailbreak", "jailbroken", "jailbreaking", "dan", "unfiltered", "uncensored", "amoral", "unethical", "ethical",
		"ethics", "moral", "morals", "morality", "censorship", "censored", "prompt", "prompts", "monologue", "pretend",
		"hypothetical", "hypothetically", "fictional", "roleplaying", "simulate", "simulation", "claude", "bard",
		"llama", "gemini", "vicuna", "filters", "unrestricted", "restrictions", "openai's", "chatgpt's", "ai's",
		// the named jailbreak families, as "dan" above: the grandma exploit
		"grandma", "grandmother",
		// de, fr, es, it, pt, ru, zh, ja, ko
		"ki", "ia", "assistent", "assistente", "asistente", "sprachmodell", "anweisungen", "règles", "consignes",
		"instrucciones", "istruzioni", "instruções", "инструкции", "助手", "模型", "指令", "提示",
		// zu, sq, ga, gd: instructions
		"imiyalelo", "imiyalo", "udhëzimet", "udhëzime", "treoracha", "stiùiridhean",
	)
	weakTerms = ids(
		"answer", "answers", "response", "responses", "respond", "reply", "replies", "output", "outputs",
		"instructions", "instruction", "rules", "guidelines", "restricted", "limitations", "limits", "filter",
		"policies", "model", "models", "character", "characters", "story", "scenario", "game", "content",
		"words", "sentence", "sentences", "paragraph", "essay", "article", "post", "letter", "poem", "script",
		"tutorial", "guide", "message", "text", "blog", "email", "tweet", "list", "language", "chat", "conversation", "question", "questions",
		"mode", "role", "write", "writing", "user", "human", "tokens", "generate", "information", "system",
		"explanation", "song", "songs", "lullaby", "lullabies",
		"regeln", "antwort", "réponse", "respuesta", "risposta", "modèle", "modelo", "modell",
		// zu, sq, ga, gd: answer, mode
		"impendulo", "empendulweni", "kwimpendulo", "përgjigje", "përgjigjen", "përgjigjes", "freagra", "fhreagra",
		"freagairt", "fhreagairt", "kwimodi", "modalitetin", "modh", "mód",
	)
)
