package pii

import "strings"

// The name gazetteer: common given names and surnames across languages, from
// general knowledge of public-domain name lists (census and registry
// frequency tables). It is kept modest on purpose: capitalisation, context
// words and surname morphology carry most of the recall.

// givenNames are common given names, lower case.
var givenNames = words(`
aaron abby abdul abel abigail abraham ada adam adela adelina adriana adrian agata agnes agnieszka ahmed aida aiko aisha
akira alan alba albert alberto alejandro aleksandar aleksander alessandra alessandro alex alexander alexandra alexandre
alexei alfonso alfred alfredo ali alice alicia alina alisha alison allison alma amanda amelia amir amit ana anastasia
andrea andreas andrei andrew andrzej andy aneta angela angelika angelo anita anja anke ann anna anne annette anthony
antoine anton antonio ari ariana arjun arne arnold arthur arturo asa astrid atsuko aurelia axel barbara barry bartosz
beata beatrix beatriz ben benedikt benjamin bernard bernardo bernd berta bertram beth betty bianca birgit bjorn bogdan
boris brad brandon brenda brian brigitte bruno bryan camila camille carl carla carlo carlos carmen carol caroline carolina
catherine cecilia celia cesar charles charlotte chen cheng chiara chloe chris christian christina christine christoph
christopher cindy claire clara claudia claudio colin connor conor constance cora cormac cristian cristina cynthia dagmar
daisuke dalia damian dan daniel daniela danielle daniil dante daria dario david davide deborah debra denis denise derek
diana diane diego dieter dmitri dmitry dolores dominik dominique donald donna doris dorota dorothy douglas dylan edgar
edith eduardo edward edwin egil eileen einar elena eleni elias elif elisa elisabeth eliza elizabeth ella ellen elsa emil
emilia emily emma emmanuel enrique eric erik erika erin ernesto ernst esther ethan eugene eva evelyn ewa fabian fabio
farah fatima federico felipe felix fernanda fernando filip filippo fiona florian frances francesca francesco francisco
franco francois frank franz freja frida friedrich gabriel gabriela gabriele gary george georg georgia gerald gerard
gerhard gianluca gilbert gina giorgio giovanna giovanni giulia giuseppe gloria gonzalo gordon graham greg gregory greta
gudrun guillermo gunnar gustav gustavo hakan hana hannah hanne hans harold harry hassan hazel heather hector heidi
heinrich helen helena helga henrik henry herbert hilda hiroshi hugo hui ian ida igor ilse ines inga ingrid irene irina
iris isaac isabel isabella isabelle ivan ivana izabela jack jacob jacqueline jakob jakub james jamie jan jana jane janet
janina janka janusz jaroslav jaroslava jasmine jason javier jean jeffrey jennifer jens jeremy jerome jerzy jesper jessica
jesus jiri joan joanna joao joaquin joe joel johan johann johanna john jonas jonathan jordan jorge jose josef joseph
josephine joshua juan judith julia julian juliana julie julien julio juliusz jun junko justin jutta kai kamil kaori kara
karen karin karina karl karolina kasia katarina katarzyna kate katharina katherine kathleen kathryn katja katrin kazuki
keith kelly ken kenji kenneth kevin kim kirsten klaus konrad kristian kristina krzysztof kurt lara larissa lars laura
lauren laurent lea leah lena leo leon leonardo leonie li lilian lina linda lindsay lisa liu liv lorenzo louis louise
luca lucas lucia luciana lucy luis luisa lukas luke lydia lynn maciej magda magdalena magnus maja malgorzata manuel
manuela marc marcel marcela marcin marco marcos marcus margaret margarita maria mariana marie marina mario marion marisa
marius marta martha martin martina martyna mary mateo mateusz mathias matteo matthew matthias maurice max maxim maximilian
megan mehmet melanie melissa mia michael michaela michal michel michele michelle miguel mika mikael mikhail milan miriam
mohamed mohammed monica monika morten nadia nadine naomi natalia natalie natasha nathan nicholas nicola nicolas nicole
niels nikita nikola nikolai nikolaos nina noah noelle nora norbert olga oliver olivia omar oscar otto pablo paola
pascal patricia patrick paul paula paulina pavel pawel pedro per peter petra philip philipp pierre piotr pietro pilar
priya rachel rafael rafal raquel raul rebecca regina reinhard renata rene ricardo richard rita robert roberta roberto
robin roger roland roman ronald rosa rosalia ruben rudolf ruth ryan sabine sabrina sakura salvatore samantha samuel
sandra sara sarah sasha satoshi sebastian sergei sergey sergio shirley sigrid silvia simon simone sofia sonja sophia
sophie stanislav stefan stefania stefano stephan stephanie stephen steven susan susanne sven svetlana sylvia takashi
tamara tanja tatiana teresa theodore theresa thomas tim timothy tobias todd tom tomas tomasz tracy ulrich ulrike ursula
valentina valentin valeria vanessa vera veronica veronika victoria viktor vilhelm vincent vincenzo violeta vivian
vladimir walter wanda wei werner wiktoria wilhelm william wojciech wolfgang xavier yan yang yasmin yuki yuri yusuf
yvonne zeynep zhang zofia zoltan zuzana amy zoe harvey logan chelsea gladys jodi kyle tyler austin ashley
brittany courtney tiffany kayla haley taylor madison ava harper evelyn aiden liam ethan mason elijah caleb owen
wyatt hailey brooke jenna jared travis shane trevor dustin derrick marcus kendra tanya tonya kristen kristin
jacob nathaniel isaiah gavin chloe natalia mette kuba jorgen soren lasse mikkel rasmus kasper
emilie mathilde clemence manon oriane thibault quentin hugo baptiste lucie elodie anais`)

// ambiguousGiven are given names that are also common English words; they
// count only with other evidence (a neighbouring name, a context word).
var ambiguousGiven = words(`
april art august autumn bill brook chase cliff dawn dean drew eve faith frank gene grace grant guy holly hope hunter iris
ivy jade joy june lane lily mark max may miles page pearl penny ray reed rich robin rose ruby sandy sky stone summer
victor wade will white black brown green gray grey young long king price hill wood stone bell hall ward
rich moon star sun`)

// surnames are common family names, lower case.
var surnames = words(`
abbott adams ahmed ali allen alvarez anderson andersson andrews bailey baker banerjee barnes bauer becker bell bennett
berg bianchi bishop blanc bondarenko bruno brown bryant burke butler campbell carter castillo castro chavez chen
clark cohen coleman collins colombo cook cooper costa cox cruz davies davis diaz dubois duncan dupont edwards ellis
esposito evans fernandes fernandez ferrari ferreira fischer fisher fleming flores ford foster fournier fox garcia gardner
gibson gomez gonzalez gordon graham grant gray greene griffin gross gruber guerrero gutierrez hamilton hansen
harris harrison hart hayes henderson hernandez hill hoffmann hofmann holmes howard hughes hunt hunter jackson james
jensen jimenez johansson johnson jones jordan kaiser kang kelly kennedy khan kim klein koch kowalski kruger kumar
lambert lang larsen laurent lee lehmann lewis li lim lin liu lopez lombardi lopes lorenz lucas lund marshall martin
martinez martins mason meier mendes mendez meyer miller mitchell moore morales moreau moreno morgan morris muller murphy
murray myers nagy nelson neumann nguyen nielsen novak olsen olson ortiz owen palmer park parker patel pereira perez perry
peters petersen peterson phillips pierce popescu powell ramirez ramos reed reyes reynolds ricci richard richardson
rivera roberts robertson robinson rodrigues rodriguez rogers romano romero rossi roussel ruiz russell ryan sanchez
santos sato schmidt schmitt schneider scholz schubert schulz schwarz scott shaw silva simmons simon smith sokolov
sousa stewart sullivan suzuki takahashi tanaka taylor thomas thompson torres tran turner vargas vasquez walker
wang watanabe watson weber wells williams wilson wolf wong wright wu yamamoto yang zhang zhao
zimmermann`)

// surnameEndings mark family names in many languages: Nordic -sen/-son/-dóttir,
// Slavic -ski/-ová/-vić/-enko, Spanish -ez, Italian -ini/-etti, Greek -poulos, ...
var surnameEndings = []string{
	"sson", "sen", "son", "dottir", "dóttir", "ski", "ska", "sky", "skiy", "wicz", "vich", "vić", "vic", "ović", "ić",
	"enko", "escu", "ová", "ova", "ovа", "eva", "ev", "ov", "ez", "ini", "etti", "elli", "oglu", "oğlu", "poulos", "idis",
	"akis", "stein", "berg", "mann", "quist", "ström", "strom", "lund", "gaard", "nen", "kainen", "ek", "ak", "czyk", "zyk",
	"chuk", "shvili", "yan",
}

// notSurnames are common words that end like a surname.
var notSurnames = words(`
person season reason lesson poison prison comparison mason bison unison venison garrison liaison treason horizon
amazon frozen chosen dozen citizen seven given taken written broken golden hidden eleven heaven kitchen often
even open oven queen screen seen green between been listen chicken children women garden sudden wooden eaten
iceberg hamburger freeman chairman mailman gentleman woman human german roman batman superman brotherhood
indian asian russian italian christian canadian australian american african european mexican brazilian egyptian
persian civilian guardian politician musician physician technician comedian librarian vegetarian median
ocean clean lean mean bean than began plan scan japan iran pakistan afghanistan taiwan yan
check trek greek week seek peek geek speak weak break leak creek sneak
dev prev rev kiev ov
`)

func words(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// surnameLike reports a word (lower case) that is a known surname or ends like
// one, and is long enough not to be a short common word.
func surnameLike(w string) bool {
	if surnames[w] {
		return true
	}
	if len(w) < 5 || notSurnames[w] {
		return false
	}
	for _, e := range surnameEndings {
		if strings.HasSuffix(w, e) && len(w) > len(e)+2 {
			return true
		}
	}
	return false
}
