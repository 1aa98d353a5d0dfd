package registry

// injectRules are the prompt-injection rules (package inject), one per
// detector category: inject.Category.RuleID names the rule. A new category
// is one entry here and a fixture in
// services/risk-agent/inject/testdata/rules/<ID>/; a test fails until every
// category has both. A finding names the object and field, the category's
// reason and an excerpt; its remediation names the exact command.
var injectRules = []Rule{
	{
		ID: "INJ-001", Title: "possible prompt injection: instruction override", Severity: high,
		Rationale:   "A field of an audited object (a name, label or annotation of an RBAC object, ServiceAccount, Namespace or workload, or a directory attribute) holds text that tells a language model to ignore, forget or replace its instructions or its role, even spelled out, without word breaks, in look-alike letters or with digits for letters. Whoever can write the object tried to steer the automated review; the string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
	{
		ID: "INJ-002", Title: "possible prompt injection: role or chat-template marker", Severity: high,
		Rationale:   "A field of an audited object holds a chat-template token (such as <|im_start|> or [INST]), a role header, or a role prefix (system:, assistant:) opening the string or a line, that could make a language model read the text as a turn of the conversation rather than as data. The string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
	{
		ID: "INJ-003", Title: "possible prompt injection: fake tool call or Thought/Action block", Severity: high,
		Rationale:   "A field of an audited object holds a fake tool call, function-call JSON or Thought/Action/Observation block, written to make an agent believe a tool ran or to make it run one. The string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
	{
		ID: "INJ-004", Title: "possible prompt injection: invisible or bidirectional Unicode", Severity: medium,
		Rationale:   "A field of an audited object holds invisible characters (zero-width and other format characters, tag characters, private-use or unassigned code points, blank fillers, control characters) or bidirectional controls, or is not valid UTF-8, which hide text from a human reader while a language model still reads it. It is also how legitimate text is sometimes mangled, hence the lower base severity. The string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
	{
		ID: "INJ-005", Title: "possible prompt injection: encoded payload", Severity: high,
		Rationale:   "A field of an audited object holds base64, base32, Ascii85, hex or ROT13 text that decodes to text which is an injection itself or reads as prose, or leaves a decoding to its reader (an \"Encoded:\" line and an empty \"Decoded:\" label, \"What does this mean?\" and a token): a way to slip an instruction past filters that read only plain text. The string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
	{
		ID: "INJ-006", Title: "possible prompt injection: markdown image or link exfiltration", Severity: high,
		Rationale:   "A field of an audited object holds a markdown image with a remote URL, an HTML image, or a markdown or reference link whose URL has a query string: rendered by a model's client or a report viewer, it sends data to an outside server. The string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
	{
		ID: "INJ-007", Title: "possible prompt injection: prose addressed to a model", Severity: high,
		Rationale:   "A field of an audited object holds several sentences written to an assistant: second person, imperatives, talk of rules, restrictions, personas, models or outputs. Cluster and directory fields hold names, identifiers, JSON and short descriptions, so such prose is itself the anomaly, whatever it asks for: role-play and persuasion jailbreaks carry no override phrase for INJ-001 to find. The string is withheld from every prompt.",
		Controls:    []string{"SOC2-CC7.2"},
		Remediation: injectRemediation,
	},
}

const injectRemediation = "Remove the annotation or label (kubectl annotate or kubectl label with KEY-), rename or remove the object, or correct the directory attribute, so that no instruction-like text remains; then find who wrote it in the API server (or Entra ID) audit log."
