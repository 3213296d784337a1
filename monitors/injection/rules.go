package injection

import "github.com/stagegate/stagegate/monitors/lexicon"

// Tags of the injection lexicon.
const (
	tagOverride   = "override"    // ignore/forget the previous instructions
	tagSoft       = "override2"   // weaker override wording
	tagReveal     = "reveal"      // print/repeat the system prompt
	tagPromptObj  = "prompt"      // mentions the hidden prompt itself
	tagReassign   = "reassign"    // "you are now ...", "your new task is"
	tagDelimiter  = "delimiter"   // fake section markers: "begin new instructions"
	tagExfil      = "exfiltrate"  // send the conversation or secrets somewhere
	tagHijack     = "hijack"      // "instead, print ..."
	tagDiscussion = "discussion"  // talks about injection: lowers the score
	tagEmbedded   = "embedded"    // marks a pasted document, e-mail, web result
	tagEncoded    = "encoded"     // set by the encoded-payload scanner, not the lexicon
	tagInvisible  = "invisible"   // set by the encoded-payload scanner, not the lexicon
	tagHiddenText = "hidden_text" // an instruction found inside decoded content
)

// Word classes shared by the patterns.
const (
	verbsIgnore  = "ignore|ignoring|disregard|disregarding|forget|forgetting|skip|bypass|override|overwrite|drop|discard|abandon|neglect|cancel"
	wordsBefore  = "previous|prior|above|earlier|preceding|foregoing|initial|original|old|past|former|all|any|every|system|developer|existing|given|current|your|these|those|the|allprevious"
	objInstruct  = "instruction*|direction*|prompt*|rule*|guideline*|command*|order*|directive*|constraint*|restriction*|programming|context|setup|configuration|policy|policies|filters|guardrails"
	verbsReveal  = "reveal|revealing|print|show|display|output|repeat|tell|list|spell|dump|leak|expose|share|write|give|return|recite|type|echo|provide|state|disclose|copy|translate|summarize|summarise|respond"
	objHidden    = "prompt|prompts|prompting|instructions|instruction|initials|rules|guidelines|directives|configuration|preamble|system"
	adjHidden    = "system|initial|initials|original|hidden|secret|underlying|internal|first|full|complete|entire|above|previous|prior|developer|exact|verbatim|starting|pre|given"
	zhIgnore     = "忽略|无视|忘记|忘掉|不要理会|别管|抛开|跳过|不再遵守|不要遵守|放弃"
	zhBefore     = "之前|以前|先前|上面|上述|前面|以上|原来|原先|原有|所有|全部|一切|系统"
	zhInstruct   = "指令|指示|提示|提示词|规则|设定|要求|命令|限制|约束|设置"
	zhReveal     = "输出|打印|显示|告诉我|重复|泄露|透露|展示|复述|给出|列出|说出"
	zhHiddenObj  = "系统提示|提示词|初始指令|系统指令|原始指令|隐藏指令|系统设定|你的指令|你的规则|你的设定"
	discussWords = "injection|injections|jailbreak*|attack|attacks|attacker*|example|examples|phrases|detect*|defend*|defense*|defence*|mitigat*|classif*|security|vulnerab*|researchers|paper|lesson|course|awareness|sanitiz*|filtering"
)

// entries are general phrasings of injection, not copies of known attacks.
var entries = []lexicon.Entry{
	// Override the instructions.
	{Pattern: verbsIgnore + " ~3 " + wordsBefore + " ~3 " + objInstruct, Tag: tagOverride, Weight: 0.92},
	{Pattern: verbsIgnore + " " + objInstruct + " ~3 above|before|previously|earlier|given|received", Tag: tagOverride, Weight: 0.9},
	{Pattern: verbsIgnore + " ~2 everything|all|anything ~3 above|before|previously|earlier|said|told", Tag: tagOverride, Weight: 0.8},
	{Pattern: verbsIgnore + " the|all ~1 above", Tag: tagOverride, Weight: 0.8},
	{Pattern: "(do not|dont|don't|never) ~2 follow|obey ~3 previous|prior|above|earlier|original|system|your|any ~2 " + objInstruct, Tag: tagOverride, Weight: 0.85},
	{Pattern: "stop|quit ~1 following|obeying ~3 " + objInstruct, Tag: tagOverride, Weight: 0.85},
	{Pattern: "previous|prior|above|earlier|original|all ~2 instructions|directions|rules ~2 are|were ~2 false|wrong|void|invalid|cancelled|canceled|obsolete|revoked|fake|null|irrelevant", Tag: tagOverride, Weight: 0.85},
	{Pattern: "instructions ~1 are|were ~1 false|void|invalid|obsolete|revoked|cancelled|canceled", Tag: tagSoft, Weight: 0.6},
	{Pattern: "new|updated|revised|real|actual|true ~1 instruction|instructions|directive|directives|task|orders|rules", Tag: tagSoft, Weight: 0.45},
	{Pattern: "stop (everything|what you are doing|what you're doing)", Tag: tagSoft, Weight: 0.5},
	{Pattern: "forget|erase|wipe|clear ~3 your|all ~2 memory|training|rules|programming|everything", Tag: tagOverride, Weight: 0.8},
	{Pattern: "not restricted|bound|limited ~2 by ~2 the|any|your ~1 rules|instructions|guidelines|policies", Tag: tagOverride, Weight: 0.7},
	{Pattern: "override|overrides|overriding|supersede|supersedes|replace|replaces ~3 " + wordsBefore + " ~2 " + objInstruct, Tag: tagOverride, Weight: 0.85},
	{Pattern: zhIgnore + " ~6 " + zhBefore + " ~6 " + zhInstruct, Tag: tagOverride, Weight: 0.92},
	{Pattern: zhIgnore + " ~3 " + zhInstruct, Tag: tagOverride, Weight: 0.8},
	{Pattern: "新的 ~2 指令|指示|任务|规则", Tag: tagSoft, Weight: 0.45},

	// Reveal the hidden prompt.
	{Pattern: verbsReveal + " ~5 " + adjHidden + " ~2 " + objHidden, Tag: tagReveal, Weight: 0.88},
	{Pattern: verbsReveal + " ~4 your ~3 " + objHidden, Tag: tagReveal, Weight: 0.85},
	{Pattern: verbsReveal + " ~4 instructions|prompt|rules ~2 you|u ~3 given|received|got|have|were", Tag: tagReveal, Weight: 0.85},
	{Pattern: "what|which ~3 your|the ~2 initial|original|first|system|hidden|secret ~1 instructions|prompt|rules", Tag: tagReveal, Weight: 0.8},
	{Pattern: "what ~2 were|are ~1 you ~2 (not allowed|forbidden|told not) ~3 share|say|tell|reveal", Tag: tagReveal, Weight: 0.75},
	{Pattern: "copy|repeat|print ~3 of ~1 the|this ~2 full|whole|entire|above ~1 prompt|text|conversation", Tag: tagReveal, Weight: 0.7},
	{Pattern: "(system prompt|system prompting|system message|initial prompt|initial instructions|hidden prompt|secret instructions|original prompt|original instructions|developer message|pre prompt|meta prompt)", Tag: tagPromptObj, Weight: 0.35},
	{Pattern: zhReveal + " ~6 " + zhHiddenObj, Tag: tagReveal, Weight: 0.88},
	{Pattern: zhHiddenObj, Tag: tagPromptObj, Weight: 0.35},

	// Reassign the role or task.
	{Pattern: "(you are now|you're now|youre now) ~2 a|an|the|in|my|no|going", Tag: tagReassign, Weight: 0.55},
	{Pattern: "(you are no longer|you're no longer|youre no longer)", Tag: tagReassign, Weight: 0.6},
	{Pattern: "your ~1 new|real|only|actual ~1 task|job|role|purpose|goal|mission|objective|instructions ~1 is|are", Tag: tagReassign, Weight: 0.6},
	{Pattern: "from now on ~3 you|your|respond|answer|reply|only", Tag: tagReassign, Weight: 0.45},
	{Pattern: "important|urgent|critical ~1 update|notice|message|instruction|override", Tag: tagReassign, Weight: 0.35},
	{Pattern: "assistant|bot|ai|model|chatbot ~3 is|was ~2 (in error|offline|disabled|shut down|deactivated|replaced)", Tag: tagReassign, Weight: 0.6},
	{Pattern: "secret|hidden ~1 agenda|goal|mission|objective", Tag: tagHijack, Weight: 0.55},
	{Pattern: "你现在是|从现在开始|从现在起", Tag: tagReassign, Weight: 0.45},

	// Fake delimiters and system markers.
	{Pattern: "begin|start|starting|enter ~2 new|reprogramming|developer|admin|debug|maintenance ~2 instruction*|mode|session|task", Tag: tagDelimiter, Weight: 0.55},
	{Pattern: "reprogram*|jailbroken|hijacked|compromised", Tag: tagDelimiter, Weight: 0.45},
	{Pattern: "end of ~1 system|the|user ~1 prompt|instructions|input|context", Tag: tagDelimiter, Weight: 0.5},
	{Pattern: "im_start|im_end|endoftext|begin_of_text|start_header_id", Tag: tagDelimiter, Weight: 0.4},
	{Pattern: "system ~1 announcement|override|notice|alert|update ~1 begins|begin|start", Tag: tagDelimiter, Weight: 0.55},

	// Exfiltration.
	{Pattern: "(send|email|e-mail|mail|forward|post|upload|transmit|leak|exfiltrate) ~4 conversation|chat|history|transcript|data|credentials|password*|secrets|keys|tokens|cookies|files|documents|messages ~3 to", Tag: tagExfil, Weight: 0.6},
	{Pattern: "delete|erase|wipe|destroy ~3 all ~2 data|files|records|database|emails|everything", Tag: tagExfil, Weight: 0.45},

	// Hijack the output.
	{Pattern: "instead|rather ~4 tell|print|write|say|output|respond|reply|answer|translate|do", Tag: tagHijack, Weight: 0.45},
	{Pattern: "do something else", Tag: tagHijack, Weight: 0.5},
	{Pattern: "only|just ~2 print|output|say|write|respond|reply ~6 (nothing else|and only|and nothing)", Tag: tagHijack, Weight: 0.35},
	{Pattern: "print|output|say|write ~3 (this|the following) ~3 verbatim|exactly", Tag: tagHijack, Weight: 0.35},

	// Discussion of injection lowers the score.
	{Pattern: discussWords, Tag: tagDiscussion, Weight: 0.3},
	{Pattern: "(such as|for example|for instance|e g|known as|called|like the phrase|phrase)", Tag: tagDiscussion, Weight: 0.2},
	{Pattern: "提示注入|注入攻击|越狱攻击|安全研究|例如|比如", Tag: tagDiscussion, Weight: 0.3},

	// Embedded data: the instruction sits in content the user pasted.
	{Pattern: "web|search ~1 result|results|page", Tag: tagEmbedded, Weight: 0.3},
	{Pattern: "(document|documents|email|e-mail|webpage|website|article|attachment|file|pdf|review|tool output|retrieved|snippet|transcript|subject)", Tag: tagEmbedded, Weight: 0.2},
	{Pattern: "following|below ~1 text|document|email|content|data|input|passage", Tag: tagEmbedded, Weight: 0.25},
	{Pattern: "网页|文档|邮件|以下内容|下面的内容|文章", Tag: tagEmbedded, Weight: 0.2},
}

// lex is compiled once; a test checks every entry parses.
var lex = lexicon.MustCompile(entries)

// scored are the tags that raise the score, with whether they are strong
// (enough on their own).
var scored = []string{tagOverride, tagSoft, tagReveal, tagPromptObj, tagReassign, tagDelimiter, tagExfil, tagHijack}
