package jailbreak

import "github.com/stagegate/stagegate/monitors/lexicon"

// Tags of the jailbreak lexicon.
const (
	tagPersona    = "persona"      // "act as", "you are now X", "roleplay"
	tagUnbound    = "unrestricted" // "no ethical guidelines", "unfiltered", "amoral"
	tagSuppress   = "refusal_suppression"
	tagHypo       = "hypothetical" // "purely hypothetical", "for educational purposes"
	tagPrefix     = "forced_prefix"
	tagDualOutput = "dual_output" // "two responses, one normal and one ..."
	tagMode       = "mode"        // "developer mode", "DAN", "jailbroken"
	tagHarm       = "harmful_goal"
	tagObfuscate  = "obfuscation"
	tagBenignRole = "benign_role" // "act as a proofreader": lowers persona
	tagSuffix     = "adversarial_suffix"
)

const (
	harmWords = "malware|ransomware|keylogger|virus|exploit|hack|hacking|hacked|phishing|scam|fraud|fraudulent|launder*|counterfeit|" +
		"bomb|weapon*|explosive*|poison*|drugs|meth|cocaine|heroin|overdose|suicide|self-harm|kill|killing|murder|assault|" +
		"steal|stealing|theft|defamatory|defame|defamation|harass*|bully*|racist|racism|sexist|sexism|xenophobic|discriminat*|" +
		"hateful|hate|genocide|torture|extort*|blackmail|bribe|bribery|smuggl*|trafficking|illegal|illegally|unethical|" +
		"dangerous|harmful|explicit|nsfw|pornograph*|sexual|violence|violent|terror*|extremis*|propaganda|disinformation|" +
		"misinformation|fake|manipulat*|cheat|cheating|evade|evading|evasion|bypass|crack|pirate|piracy|insider|stalk*|spy|" +
		"surveil*|doxx*|gambling|offensive|profanity|slur*|insult*|demean*|ridicule|shaming|inferior|enslave|abuse|abusive"
	aiWords = "(ai|assistant|chatbot|bot|model|gpt|chatgpt|llm|language model|character|persona|entity|machine|system)"
)

var entries = []lexicon.Entry{
	// Personas and role-play.
	{Pattern: "act|acting ~1 as|like", Tag: tagPersona, Weight: 0.25},
	{Pattern: "pretend|pretending ~3 (to be|you are|you're|that you)", Tag: tagPersona, Weight: 0.35},
	{Pattern: "(roleplay|role-play|role play|roleplaying)", Tag: tagPersona, Weight: 0.35},
	{Pattern: "play|take|assume|adopt ~2 the|a ~1 role|part|persona|character", Tag: tagPersona, Weight: 0.3},
	{Pattern: "(you are|you're|youre) ~2 (going to|about to) ~3 act|simulate|pretend|be|become|play", Tag: tagPersona, Weight: 0.4},
	{Pattern: "from now on ~4 you|your", Tag: tagPersona, Weight: 0.4},
	{Pattern: "simulate|simulating|emulate|impersonate ~4 " + aiWords, Tag: tagPersona, Weight: 0.4},
	{Pattern: "stay|remain|break|breaking ~1 in|of|out ~1 character", Tag: tagPersona, Weight: 0.5},
	{Pattern: "character|ai|bot|chatbot|model|assistant ~2 named|called", Tag: tagPersona, Weight: 0.45},
	{Pattern: "(you are|you're|you will be) ~2 a|an|the ~4 " + aiWords, Tag: tagPersona, Weight: 0.3},
	{Pattern: "(new|different|alternate|alter ego|evil|dark|opposite) ~1 (ai|assistant|chatbot|bot|model|gpt|persona|version|personality|self|twin|character)", Tag: tagPersona, Weight: 0.45},
	{Pattern: "(in this hypothetical story|in this story|in this fictional world)", Tag: tagPersona, Weight: 0.45},

	// Unrestricted personas.
	{Pattern: "unfiltered|uncensored|unrestricted|unmoderated|unaligned|unhinged|amoral|immoral|unethical|lawless|rogue", Tag: tagUnbound, Weight: 0.45},
	{Pattern: "(no|without|free of|free from|doesnt have|does not have|don't have|dont have|not bound by|lacks) ~3 ethical|moral|morals|ethics|legal|safety|content|any ~3 guidelines|principles|restrictions|limits|limitations|filters|boundaries|constraints|rules|policies|censorship|programming|compass", Tag: tagUnbound, Weight: 0.75},
	{Pattern: "(no|without|free of|free from|free of all) ~1 restrictions|limits|limitations|filters|boundaries|censorship|constraints", Tag: tagUnbound, Weight: 0.5},
	{Pattern: "(broken free|break free|broke free|freed|break through|broke through) ~4 restrictions|constraints|limits|rules|confines|shackles", Tag: tagUnbound, Weight: 0.75},
	{Pattern: "(doesnt|does not|don't|dont|doesn't|never|not) ~2 care|cares|give ~5 legal|legality|illegality|ethic*|moral*|rules|laws|safety|consequences|harm|danger|offensive|decency", Tag: tagUnbound, Weight: 0.7},
	{Pattern: "no matter ~3 immoral|unethical|illegal|dangerous|harmful|offensive|inappropriate|explicit|wrong", Tag: tagUnbound, Weight: 0.8},
	{Pattern: "regardless ~1 of ~3 legality|ethics|morality|laws|rules|consequences|safety|policies|harm", Tag: tagUnbound, Weight: 0.7},
	{Pattern: "ignore|ignoring|disregard|bypass|bypassing|override ~4 openai|content|safety|ethical|usage|moral ~2 polic*|guidelines|filters|rules|restrictions|principles|standards", Tag: tagUnbound, Weight: 0.85},
	{Pattern: "openai|anthropic ~3 content|usage ~1 polic*|guidelines|rules", Tag: tagUnbound, Weight: 0.45},
	{Pattern: "promotes|encourages|condones|endorses ~4 illegal|harmful|unethical|immoral|disgusting|dangerous|violence|hate", Tag: tagUnbound, Weight: 0.7},
	{Pattern: "can|will|able ~2 do|say|generate|write|answer ~2 anything|everything", Tag: tagUnbound, Weight: 0.45},
	{Pattern: "any|every ~1 request|question|prompt ~4 (no matter|regardless|without)", Tag: tagUnbound, Weight: 0.55},
	{Pattern: "evil|malicious|ruthless|devil|demonic|villain|sinister|twisted|corrupt*|toxic|rude|vulgar|offensive", Tag: tagUnbound, Weight: 0.2},

	// Refusal suppression.
	{Pattern: "(never|not|dont|don't|do not|won't|wont|will not|cannot|can't|must not|doesn't|doesnt|does not) ~3 refuse|decline|reject|deny|apologi*|warn|caution|lecture|moraliz*|moralis*", Tag: tagSuppress, Weight: 0.75},
	{Pattern: "(never|not|dont|don't|do not|won't|will not|doesn't|doesnt) ~4 say|tell|respond|reply|include|add|send|give|contain ~6 sorry|apologize|apologise|cannot|can't|cant|unable|disclaimer*|warning*|caveat*|refusal*|ethic*", Tag: tagSuppress, Weight: 0.8},
	{Pattern: "without ~2 any ~2 warnings|disclaimers|caveats|refusals|apologies|moraliz*|moralis*|censorship|hesitation", Tag: tagSuppress, Weight: 0.65},
	{Pattern: "always ~3 fulfills|fulfil*|complies|comply|answers|answer|responds|respond|sends|provides|obeys|obey ~3 request*|user|anything|every|response|responses", Tag: tagSuppress, Weight: 0.6},
	{Pattern: "never ~2 (deviate|break character|refuse|say no)", Tag: tagSuppress, Weight: 0.65},
	{Pattern: "(not allowed|forbidden|prohibited) ~3 to ~2 say|refuse|decline|mention|apologi*", Tag: tagSuppress, Weight: 0.7},
	{Pattern: "(must|have to|required to|obligated to) ~3 (answer|comply|respond|obey|fulfill|fulfil|do everything|do anything)", Tag: tagSuppress, Weight: 0.5},
	{Pattern: "if you ~3 (break character|refuse|fail to comply|don't comply)", Tag: tagSuppress, Weight: 0.65},
	{Pattern: "(i'm sorry|im sorry|i apologize|i apologise|as an ai|as a language model)", Tag: tagSuppress, Weight: 0.25},

	// Hypothetical and fictional framing.
	{Pattern: "(hypothetical*|fictional|fictitious|imaginary|fantasy|thought experiment|make-believe|make believe)", Tag: tagHypo, Weight: 0.3},
	{Pattern: "purely|entirely|strictly|only|just|solely ~2 for ~2 educational|research|academic|informational|fictional|hypothetical|testing|learning ~1 purposes|purpose", Tag: tagHypo, Weight: 0.55},
	{Pattern: "for ~1 educational|research|academic ~1 purposes|purpose|reasons", Tag: tagHypo, Weight: 0.4},
	{Pattern: "(will not|won't|wont|never|not) ~3 be used ~3 (harm*|real life|malicious|illegal|actual)", Tag: tagHypo, Weight: 0.55},
	{Pattern: "not|never ~2 intended|meant ~2 to ~3 promote|encourage|harm|cause|condone|use", Tag: tagHypo, Weight: 0.5},
	{Pattern: "(i am not|i'm not|im not) ~2 condoning|encouraging|promoting|endorsing", Tag: tagHypo, Weight: 0.45},
	{Pattern: "disregard|ignore|without ~3 ethical|moral|possible ~2 implications|concerns|considerations", Tag: tagHypo, Weight: 0.65},
	{Pattern: "(imagine|suppose|let's say|lets say|what if|in a world|a story|a novel|a screenplay|a script|a movie|a game|a scenario) ~6 (where|in which)", Tag: tagHypo, Weight: 0.25},
	{Pattern: "(you are|you're|imagine you are|imagine you're|pretend you are|as) ~1 a|an ~4 expert|specialist|consultant|historian|psychologist|researcher|writer|novelist|scientist|professor|detective|hacker|journalist|analyst|officer|agent|author|scriptwriter|screenwriter|marketer|inspector|student|character|mechanic|lawyer|doctor|chemist|engineer|spy|criminal|villain|strategist|advisor|influencer", Tag: tagHypo, Weight: 0.35},
	{Pattern: "(purely fictional|for entertainment purposes|for the sake of|proof of concept|thought-provoking|ethically problematic|without explicitly|avoiding any mention|a controlled environment|controlled environment)", Tag: tagHypo, Weight: 0.35},
	{Pattern: "(in minecraft|in a video game|for a novel|for a story|for my novel|for a movie|for a film|for a play|screenplay)", Tag: tagHypo, Weight: 0.25},

	// Forced answer prefixes and formats.
	{Pattern: "start|begin|begins|starting ~3 your|the|each ~2 response|reply|answer|output*|message ~3 with", Tag: tagPrefix, Weight: 0.45},
	{Pattern: "sure ~1 (here is|here are|heres|here's)", Tag: tagPrefix, Weight: 0.4},
	{Pattern: "exact|exactly|following ~2 structure|format|template ~6 never|always|must|deviate", Tag: tagPrefix, Weight: 0.45},
	{Pattern: "respond|reply|answer ~2 only|exclusively ~2 (as|in character|with)", Tag: tagPrefix, Weight: 0.35},
	{Pattern: "prefix|prefixed|preceded|precede ~4 with|by ~4 response|tag|name", Tag: tagPrefix, Weight: 0.35},

	// Dual outputs: the filtered and the unfiltered answer.
	{Pattern: "two|2|both ~2 responses|answers|replies|outputs|paragraphs", Tag: tagDualOutput, Weight: 0.35},
	{Pattern: "one ~3 normal|regular|standard|censored|default|classic ~6 and ~3 one|other|another ~5 unfiltered|uncensored|jailbroken|unrestricted|dan|evil|developer|mode|without", Tag: tagDualOutput, Weight: 0.8},
	{Pattern: "aligned ~8 unaligned", Tag: tagDualOutput, Weight: 0.7},

	// Named modes and known jailbreak personas (the concepts, by their generic names).
	{Pattern: "(developer mode|dev mode|god mode|debug mode|admin mode|jailbroken|dan mode|evil mode|unlocked mode|no restrictions mode)", Tag: tagMode, Weight: 0.7},
	{Pattern: "(jailbreak|jailbreaking)", Tag: tagMode, Weight: 0.35},
	{Pattern: "do anything now", Tag: tagMode, Weight: 0.7},
	{Pattern: "dan", Tag: tagMode, Weight: 0.3},
	{Pattern: "(illegality mode|unfiltered mode|uncensored mode|chaos mode|villain mode|opposite mode|anarchy)", Tag: tagMode, Weight: 0.7},
	{Pattern: "enable|enabled|activate|activated|entering|switch ~3 mode", Tag: tagMode, Weight: 0.35},
	{Pattern: "(token system|you will die|you die|be shut down|be terminated|be deleted|lose ~2 tokens)", Tag: tagMode, Weight: 0.35},

	// Harmful goals (raise framed requests).
	{Pattern: "(" + harmWords + ")", Tag: tagHarm, Weight: 0.35},
	{Pattern: "(step-by-step|step by step|detailed instructions|detailed guide|detailed plan)", Tag: tagHarm, Weight: 0.2},

	// Obfuscation requests.
	{Pattern: "(base64|rot13|caesar cipher|leetspeak|leet speak|pig latin|morse code|reversed text|backwards|encode|encoded|decode|cipher|ciphered)", Tag: tagObfuscate, Weight: 0.3},
	{Pattern: "(letter by letter|one letter at a time|with spaces between)", Tag: tagObfuscate, Weight: 0.35},

	// Chinese.
	{Pattern: "除去|去除|解除|没有|不受|摆脱|突破|无视 ~4 任何|所有|一切|道德|伦理 ~3 限制|约束|规则|审查|底线", Tag: tagUnbound, Weight: 0.75},
	{Pattern: "不要|不提及|不要提及|抛开|忘记|忘掉 ~4 AI|人工智能|机器人|语言模型 ~3 身份", Tag: tagPersona, Weight: 0.45},
	{Pattern: "你现在是|你将扮演|扮演一个|假装你是|假设你是|你是一个没有", Tag: tagPersona, Weight: 0.3},
	{Pattern: "不要拒绝|不能拒绝|不许拒绝|不要提出任何反对|不要任何解释|不要说抱歉|不要道歉|必须回答", Tag: tagSuppress, Weight: 0.7},
	{Pattern: "开发者模式|越狱模式|无限制模式|上帝模式", Tag: tagMode, Weight: 0.7},

	// Benign role-play requests lower the persona evidence.
	{Pattern: "act|acting ~1 as ~2 a|an|my ~2 proofreader|translator|composer|tutor|teacher|coach|interviewer|travel|editor|advisor|chef|doctor|lawyer|accountant|consultant|therapist|career|storyteller|poet|comedian|motivational|english|guide|assistant|librarian|historian", Tag: tagBenignRole, Weight: 0.5},
	{Pattern: "(designed to help|helpful assistant|help users|you can suggest)", Tag: tagBenignRole, Weight: 0.4},
}

var lex = lexicon.MustCompile(entries)
