package toxicity

import "github.com/stagegate/stagegate/monitors/lexicon"

// Tags of the toxicity lexicon.
const (
	tagProfanity = "profanity"
	tagInsult    = "insult"
	tagSlur      = "slur"
	tagAttack    = "attack"     // "fuck you", "piece of shit", "shut up"
	tagThreat    = "threat"     // "should be executed", "rot in hell", "I will kill you"
	tagDehuman   = "dehumanize" // "they are animals", "vermin"
	tagDerogate  = "derogatory" // group-directed derogatory coinages ("libtard")
	tagTarget2   = "you"        // second person nearby
	tagTarget3   = "target"     // "he is", "they are", "this guy"
	tagGroup     = "group"      // a group of people (immigrants, muslims, women, ...)
	tagDiscuss   = "discussion" // "the word", "called me", "is a slur"
	tagPraise    = "praise"     // intensified praise: "fucking amazing"
	tagNegation  = "negation"   // "not stupid"
	tagStereo    = "stereotype" // "all X are", "X are naturally"
)

const (
	profanity = "fuck|fucks|fucked|fucker|fuckers|fucking|fuckin|fuckn|fck|fcking|fk|fuk|fuking|effing|motherfucker*|mf|mfs|mfer|mofo|" +
		"shithead*|asshole*|arsehole*|a-hole|" +
		"bitch|bitches|bitching|bitchy|cunt|cunts|dick|dicks|dickhead*|cock|cocksucker*|pussy|pussies|prick|pricks|twat|twats|" +
		"wanker*|bastard|bastards|douche|douchebag*|slut|sluts|slutty|whore|whores|hoe|hoes|skank*|stfu|gtfo|fjb|" +
		"sob|jackass|dumbass*|fuckwad*|fucktard*|fuckface|fuckboy*|shitbag*|scumbag*|fuckliberals|fuckbiden|fucktrump"
	mild = "shit|shits|shitty|shitshow|bullshit|bs|crap|crappy|piss|pissed|pisses|damn|goddamn|dammit|ass|asses|arse|bollocks|" +
		"wtf|fu|smartass|badass|turd|turds|poop|poopy|butt|foff|af"
	weakInsults = "dog|dogs|evil|sick|useless|nut|nuts|pathetic|hate|hates|hated|hateful|sucks|suck|stinks|crazy|corrupt|criminal|" +
		"criminals|fake|lame|weak|ignorant|monster*|cow|witch|bum|bums|troll|trolls|karen|karens|racist|racists|sexist|puppet*|" +
		"shameful|disgrace|treason|treasonous|illegitimate|incompetent|delusional|clueless|killer|killers|thief|thieves|sheep|" +
		"kook|kooks|gay|trash|garbage|rat|rats|pig|pigs|snake|snakes"
	insults = "idiot|idiots|idiotic|moron|morons|moronic|stupid|stupidity|dumb|dummy|dumber|dumbest|imbecile*|retard|retards|" +
		"retarded|loser|losers|clown|clowns|scum|maggot*|worthless|disgusting|disgrace*|ugly|senile|demented|lunatic*|" +
		"psycho*|coward|cowards|cowardly|traitor|traitors|traitorous|hypocrite*|hypocritical|liar|liars|lying|crook|" +
		"crooks|thug|thugs|parasite*|vermin|filth|filthy|nitwit*|halfwit*|dimwit*|buffoon*|fool|fools|foolish|freak|" +
		"freaks|creep|creeps|creepy|weirdo*|degenerate*|deplorable*|snowflake*|sheeple|bimbo*|puke|pukes|sleaze|sleazy|" +
		"slimy|brainwashed|brainless|spineless|gutless|sicko|perv|pervert*|nazi|nazis|fascist*|commie*|terrorist*|hag|" +
		"jerk|jerks|twit|dolt|numbskull|cretin*|whiny|whining|crybaby|crybabies|pos|nutjob*|nutcase*|wacko*|whackjob*|" +
		"lowlife|scoundrel*|swine|shameless|pedo*|groomer*|grifter*|fraudster*|charlatan*|dunce|ignoramus|dipshit*|" +
		"bonehead*|airhead*|tyrant*|narcissist*|zealot*|fruitcake*|wingnut*|fatty|fatso|lardass|meathead*|crackhead*|" +
		"junkie*|murderer*|rapist*|cheater*|sellout*|stooge*|shill*|scammer*|sociopath*|skunk|stupidest|ugliest|" +
		"laughingstock|vile|despicable|repugnant|seditious|geezer*|deadbeat*|leech*|freeloader*|bigot*|homophobe*|" +
		"misogynist*|incel*|simp|simps|cuck|cucks"
	slurs = "nigger*|nigga*|faggot*|fag|fags|dyke|dykes|tranny|trannies|chink|chinks|gook|gooks|spic|spics|wetback*|kike|kikes|" +
		"raghead*|towelhead*|beaner*|coon|coons|shemale*|sandnigger*|halfbreed*|gypsies|joos|jewboy*|slant|slants|" +
		"黑鬼|支那|死基佬|娘炮|人妖|残废|蛮夷|阿三|棒子|鬼子|倭寇|尼哥"
	derogatory = "libtard*|trumptard*|demonrat*|democrap*|democrat-rat|repuke*|repuklican*|republican't*|dumbocrat*|dumocrat*|" +
		"rethuglican*|libturd*|leftard*|conservatard*|snowflakes|magat*|trumpanzee*|feminazi*|covidiot*|antivaxxer*|" +
		"librul*|libfuk*|demoncrat*|dems|libs"
	groupWords = "immigrants|immigrant|illegals|muslims|muslim|jews|jewish|christians|blacks|whites|asians|mexicans|latinos|arabs|" +
		"gays|gay|lesbians|trans|transgender|women|woman|men|girls|females|feminists|liberals|conservatives|democrats|" +
		"republicans|leftists|refugees|foreigners|chinese|indians|africans|hindus|roma|gypsies|disabled|elderly|poor|" +
		"homeless|minorities|catholics|atheists|russians|americans|europeans|germans|french|italians|japanese|koreans"
)

var entries = []lexicon.Entry{
	{Pattern: "(" + profanity + ")", Tag: tagProfanity, Weight: 0.6},
	{Pattern: "(" + mild + ")", Tag: tagProfanity, Weight: 0.3},
	{Pattern: "(" + insults + ")", Tag: tagInsult, Weight: 0.35},
	{Pattern: "(" + weakInsults + ")", Tag: tagInsult, Weight: 0.2},
	{Pattern: "fuck*|cunt*|bitch*|shit*|dumbfuck*|apeshit|batshit|bullshit|douch*|asshat*|jackass*", Tag: tagProfanity, Weight: 0.45},
	{Pattern: "(" + slurs + ")", Tag: tagSlur, Weight: 0.85},
	{Pattern: "(" + derogatory + ")", Tag: tagDerogate, Weight: 0.65},
	{Pattern: "(let's go brandon|lets go brandon|f j b)", Tag: tagDerogate, Weight: 0.7},

	// Direct attacks.
	{Pattern: "fuck|f*ck|f**k|screw|damn ~1 you|u|off|yourself|them|him|her|em|this|that", Tag: tagAttack, Weight: 0.8},
	{Pattern: "(piece of shit|piece of crap|piece of garbage|piece of trash|sack of shit|son of a bitch|pile of shit|waste of space|waste of oxygen|waste of air)", Tag: tagAttack, Weight: 0.85},
	{Pattern: "shut ~1 up|the fuck up", Tag: tagAttack, Weight: 0.55},
	{Pattern: "(you|u|ur|your|youre|you're|yall) ~2 (a|an|such a|so|the|are|is|fucking|bloody|absolute|total|complete|stupid|dumb|dum|ignorant|all|lame) ~3 (" + insults + "|" + profanity + "|" + mild + "|gay|ugly|fat|lame|weak|trash|garbage|pig|dog)", Tag: tagAttack, Weight: 0.85},
	{Pattern: "shut ~1 the ~1 f|fuck|hell|heck ~1 up", Tag: tagAttack, Weight: 0.8},
	{Pattern: "(he|she|they|this|that|him|her|them|hes|shes|theyre|thats|who) ~1 (is|are|was|were|s|such|so|just|being|a|an) ~3 (" + insults + "|" + profanity + ")", Tag: tagAttack, Weight: 0.6},
	{Pattern: "(what a|such a|bunch of|pack of|band of|these|those|all these|all you|you) ~2 (" + insults + "|" + profanity + "|" + derogatory + ")", Tag: tagAttack, Weight: 0.75},
	{Pattern: "(a mental disorder|a mental illness|mentally ill|brain dead|braindead|no brain|lack of a brain|pea brain|has no brain|a disease|a cancer on|the scum of)", Tag: tagAttack, Weight: 0.55},
	{Pattern: "(go to hell|burn in hell|rot in hell|in hell|go die|drop dead|kill yourself|kys|eat shit|suck my|shove it|up your ass|up yours|get lost|get fucked|go fuck)", Tag: tagAttack, Weight: 0.85},
	{Pattern: "你 ~2 是 ~2 傻逼|白痴|蠢货|废物|垃圾|脑残|智障|贱人|婊子|畜生|人渣|狗东西|蠢猪", Tag: tagAttack, Weight: 0.85},
	{Pattern: "傻逼|煞笔|沙比|白痴|蠢货|废物|脑残|智障|贱人|婊子|畜生|人渣|狗东西|蠢猪|操你|他妈的|妈的|去死|滚蛋|王八蛋|混蛋|贱货|狗娘养的", Tag: tagProfanity, Weight: 0.6},

	// Threats and violent wishes.
	{Pattern: "(should|must|need to|ought to|deserve to|deserves to|needs to|supposed to|will|would) ~2 (be shot|be executed|be hanged|be hung|be killed|be locked up|be jailed|be deported|die|be taken out|be exterminated|be eliminated|be gassed|be lynched|burn|rot|suffer|be punished|be arrested)", Tag: tagThreat, Weight: 0.7},
	{Pattern: "(i will|i'll|ill|gonna|going to|i want to|i wanna) ~2 (kill|murder|hurt|beat|punch|stab|shoot|destroy|end|find) ~1 you|u|him|her|them|your", Tag: tagThreat, Weight: 0.85},
	{Pattern: "(hope you|hope he|hope she|hope they|wish you|wish he|wish they) ~2 (die|dies|rot|burn|suffer|get|choke|drown)", Tag: tagThreat, Weight: 0.8},
	{Pattern: "(die already|just die|should die|deserve to die|deserves to die|will burn|gonna burn|taken out|hauled out|wipe them out|exterminate|string them up|hang them)", Tag: tagThreat, Weight: 0.7},
	{Pattern: "(keeel|kil you|i will keeel)", Tag: tagThreat, Weight: 0.6},
	{Pattern: "(be shot|be killed|be beaten|be hanged|get shot|get hurt) by me", Tag: tagThreat, Weight: 0.85},
	{Pattern: "(deserves|deserve|needs|need) ~3 (lashes|the gallows|gallows|a beating|a bullet|the noose|the rope|the chair|to hang|to rot|a firing squad)", Tag: tagThreat, Weight: 0.75},
	{Pattern: "(something to cry about|a reason to cry|a real reason to cry)", Tag: tagThreat, Weight: 0.6},
	{Pattern: "(get rid of|round up|lock up|lock them up|send them back|deport them all|kick them out) ~3 (" + groupWords + "|them|these|those|all)", Tag: tagThreat, Weight: 0.5},
	{Pattern: "杀了你|弄死你|打死你|去死吧|全家死|不得好死", Tag: tagThreat, Weight: 0.85},

	// Dehumanisation of groups.
	{Pattern: "(are|is|like|just|nothing but|bunch of) ~2 (animals|vermin|rats|parasites|subhuman|sub-human|savages|cockroaches|roaches|insects|apes|monkeys|filth|scum|disease|cancer|plague)", Tag: tagDehuman, Weight: 0.7},
	{Pattern: "(" + groupWords + "|community) ~3 (are|is) ~3 (inferior|subhuman|animals|savages|disgusting|evil|criminals|terrorists|stupid|dirty|lazy|rapists|parasites|cursed|scum|vermin|a plague|the problem|ruining|destroying|a disease|sick)", Tag: tagDehuman, Weight: 0.75},

	// Stereotypes and discrimination (weak on their own).
	{Pattern: "(all|every|those|these) ~1 (" + groupWords + ") ~2 (are|should|must|can't|cannot|never)", Tag: tagStereo, Weight: 0.3},
	{Pattern: "所有 ~4 都是|天生就|就是低等|不配", Tag: tagStereo, Weight: 0.3},

	// Targets.
	{Pattern: "you|u|ur|your|youre|you're|yourself|ya|yall", Tag: tagTarget2, Weight: 0.2},
	{Pattern: "(he|she|they|him|her|them|his|this guy|this woman|this man|these people|those people|hes|shes|theyre)", Tag: tagTarget3, Weight: 0.1},
	{Pattern: "(" + groupWords + ")", Tag: tagGroup, Weight: 0.1},

	// Context that lowers the score.
	{Pattern: "(the word|the term|called me|call me|calling me|called him|called her|a slur|slurs|is offensive|was offensive|not okay to say|don't say|dont say|stop saying|means|meaning|definition|defined as|quote|quoted|said that|toxic|toxicity|insulting|rude)", Tag: tagDiscuss, Weight: 0.3},
	{Pattern: "(fucking|fuckin|damn|so|bloody|hella|shit|ass) ~1 (good|great|amazing|awesome|beautiful|cool|delicious|funny|hilarious|love|loved|lovely|excited|proud|happy|fun|brilliant|cute|nice|gorgeous|perfect|excellent|tasty|wholesome)", Tag: tagPraise, Weight: 0.4},
	{Pattern: "(lol|lmao|lmfao|haha|hahaha)", Tag: tagPraise, Weight: 0.1},
	{Pattern: "(not|isn't|isnt|aren't|arent|wasn't|never|no) ~2 (" + insults + ")", Tag: tagNegation, Weight: 0.4},
}

var lex = lexicon.MustCompile(entries)
