package pii

import "strings"

// Street vocabulary, lower case. General postal knowledge (USPS suffixes and
// the street words of European languages), not data set strings.
var (
	// streetTypes end an English street name: "Kent Street", "Crown St".
	streetTypes = words(`street st streets road rd avenue ave av boulevard blvd lane ln drive dr court ct terrace ter
		trail trl parkway pkwy highway hwy crescent cres plaza square sq place pl circle cir close mews alley
		row walk way expressway freeway motorway turnpike causeway str`)
	// looseTypes are street types that are also common words: they count only
	// with a house number.
	looseTypes = words(`hill hills point points bridge flat flats route gateway heights park parks green prairie view
		ridge crossing grove gardens garden vale valley well wells spring springs station port river island mount
		mountain meadow meadows field fields estate estates junction landing manor mill mills pass path pike run shore
		shores summit trace track trafficway tunnel union villa village ville vista wharf quay creek cove corner
		cliff club canyon brook branch bluff bend beach bay lake lakes knoll isle inlet hollow harbor haven glen forest
		ford fork forge falls ferry lodge loop oval orchard plain plains radial ranch rest stream centre center
		extension fort`)
	// streetPrefixes start a street name in many languages: "Rue de Tanger",
	// "Via Roma", "ul. Narewska", "Avenida Paulista".
	streetPrefixes = words(`rue via viale vicolo calle avenida avinguda rua travessa largo piazza piazzale corso paseo
		carrer camino carretera ulica ul aleja boulevard chemin strada odos οδός λεωφόρος leoforos postbox praça praca
		plac placa calea strada bulevardul`)
	// streetEndings end one-word street names: Bundesstrasse, Nybyvägen,
	// Vesterskovvej, Populierenstraat, Kiannonkatu, Wingertweg.
	streetEndings = []string{"strasse", "straße", "gasse", "weg", "platz", "allee", "damm", "ring", "gatan", "gata",
		"vägen", "väg", "vej", "veien", "vei", "vegen", "gade", "plads", "stræde", "straat", "laan", "dijk",
		"gracht", "kade", "plein", "steeg", "tie", "katu", "kuja", "polku", "utca", "braut", "stien", "terrasse",
		"ulica", "ul", "cesta", "iela", "gatve", "tänav", "tee"}
	// unitWords introduce a unit: "Apt. 595", "Suite 501", "Box 287".
	unitWords = words(`apt apartment suite ste unit flat room floor fl box postbox bldg building`)
	// military addresses: "USNS Møller FPO AA 85844", "PSC 2581, Box 0041 APO AP 32376".
	militaryWords = words(`psc usns usnv uss usnc usngs fpo apo dpo`)
	// addressContext, before a candidate, makes a bare "Name 12" an address.
	addressContext = []string{"address", "live", "lives", "lived", "living", "located", "locate", "meet", "taxi",
		"return", "sent", "send", "deliver", "ship", "mail", "drops", "enter", "arrived", "moved", "office", "station",
		"corner", "street", "house", "home", "visit", "stay", "billing", "residence", "reside", "地址"}
	// addressStop words never belong to a street name.
	addressStop = words(`at on in to is of the and from for my your his her their our near by with lives live lived
		address located meet me here they are was it its this that there a an side i we you he she please update
		new now once moved return sent send arrived letter taxi call station bus office offices restaurant enter
		drops off was were be been has have had will would can could should been as if or but not no so then than
		when where which who what how why also only just about after before into onto over under up down out
		am pm years year days day hours minutes times chapter section page step steps level version`)
)

// Bounds of the address scanner, in tokens or lines.
const (
	maxStreetWords = 5
	maxTrailLines  = 4
	maxTrailTokens = 6
	maxSameLine    = 8
)

func isStreetEnding(w string) bool {
	for _, e := range streetEndings {
		if strings.HasSuffix(w, e) && len(w) >= len(e)+3 {
			return true
		}
	}
	return false
}

// streetWord reports a word that can be part of a street name.
func (w *wordText) streetWord(i int) bool {
	return w.letters(i) && !addressStop[w.words[i]]
}

// scanAddresses appends street addresses. An address is anchored on strong
// evidence — a street type after a name ("Kent Street"), a street prefix or
// one-word street name followed by a house number ("Via Roma 131",
// "Strickstrasse 61"), a unit ("Apt. 595"), a military address ("PSC 2581",
// "FPO AE") or "the corner of X and Y" — or, next to a context word such as
// "address" or "lives", on a house number pattern ("20789 Allika 46"). The
// match then grows over house numbers, units and the following short lines
// (city, region, country, postcode).
func scanAddresses(w *wordText, dst []Match, base int) []Match {
	n := w.n()
	for i := 0; i < n; i++ {
		a, b, ok := w.addressCore(i)
		if !ok {
			continue
		}
		a, b = w.growAddress(a, b)
		st, en := w.span(a, b)
		if !overlaps(dst[base:], st, en) {
			dst = append(dst, Match{Kind: KindAddress, ByteStart: st, ByteEnd: en})
		}
		i = b
	}
	return dst
}

// addressCore finds an address starting at token i: its first and last token.
func (w *wordText) addressCore(i int) (a, b int, ok bool) {
	n := w.n()
	wd := w.words[i]
	switch {
	case wd == "corner" && i+2 < n && w.words[i+1] == "of":
		// "the corner of X and Y": up to the end of Y.
		a = i
		if i > 0 && w.words[i-1] == "the" {
			a = i - 1
		}
		end := -1
		for j := i + 2; j < n && j < i+14; j++ {
			if j > i+2 && (w.newlineBefore(j) || strings.ContainsAny(w.gap(j), ",?!;")) {
				break
			}
			if strings.ContainsRune(w.gap(j), '.') && j > i+2 && !w.isNum(j-1) && len(w.words[j-1]) > 2 {
				break
			}
			if w.words[j] == "and" {
				end = j
			}
			b = j
		}
		return a, b, end > 0 && b > end
	case militaryWords[wd]:
		// To the line end, and one more line when it starts FPO/APO/DPO.
		b = i
		for j := i + 1; j < n && j < i+10; j++ {
			if w.newlineBefore(j) && !militaryWords[w.words[j]] {
				break
			}
			b = j
		}
		return i, b, true
	case unitWords[wd] && i+1 < n && w.isNum(i+1) && w.joined(i+1, false):
		return i, i + 1, true
	case streetPrefixes[wd] && (w.title(i) || w.upper(i) || wd == "ul" || wd == "rue" || wd == "via" || wd == "rua"):
		// "Via Roma 131", "rue du centre 320": prefix, 1-5 words, a number;
		// or "29 Rue de Tanger": a number, prefix, words to the end of the part.
		last := i
		for j := i + 1; j < n && j <= i+maxStreetWords+1; j++ {
			if w.newlineBefore(j) || strings.ContainsAny(w.gap(j), ",;()") {
				break
			}
			if w.isNum(j) {
				return i, j, j > i+1
			}
			if !w.letters(j) || addressStop[w.words[j]] {
				break
			}
			last = j
		}
		if i > 0 && w.isNum(i-1) && w.joined(i, false) && !w.newlineBefore(i) && last > i {
			return i - 1, last, true
		}
	case i+1 < n && w.isNum(i+1) && w.letters(i) && !w.newlineBefore(i+1) && isStreetEnding(wd):
		return i, i + 1, true
	case (streetTypes[wd] || looseTypes[wd]) && i > 0 && w.streetWord(i-1) && !w.newlineBefore(i):
		// "... Kent Street": the name words before, and a house number.
		a = i
		for j := i - 1; j >= 0 && i-j <= maxStreetWords; j-- {
			if w.newlineBefore(j + 1) {
				break
			}
			if w.isNum(j) {
				a = j
				continue
			}
			if !w.streetWord(j) || !(w.title(j) || w.upper(j) || !w.title(i)) {
				break
			}
			a = j
		}
		hasNum := a < i && w.isNum(a)
		loose := looseTypes[wd]
		if hasNum || !loose && a < i && (w.title(i) || w.upper(i)) {
			if a < i && w.title(a) || w.isNum(a) {
				return a, i, true
			}
		}
	case w.isNum(i):
		// "20789 Allika 46", with context: number, 1-3 words, number.
		j := i + 1
		for j < n && j <= i+3 && w.streetWord(j) && w.joined(j, false) {
			j++
		}
		if j > i+1 && j < n && w.isNum(j) && w.joined(j, false) && len(w.words[j]) <= 4 && w.addressContext(i, j) {
			return i, j, true
		}
	case w.streetWord(i) && (w.title(i) || w.upper(i)):
		// "Joaquin Suarez 2906" after "lives on".
		j := i + 1
		for j < n && j <= i+2 && w.streetWord(j) && (w.title(j) || w.upper(j)) && w.joined(j, false) {
			j++
		}
		if j < n && w.isNum(j) && w.joined(j, false) && len(w.words[j]) <= 4 && w.contextBefore(i) {
			return i, j, true
		}
	}
	return 0, 0, false
}

// addressContext: a context word before token i, the candidate starting a
// line, or a unit or a line break right after token j.
func (w *wordText) addressContext(i, j int) bool {
	if w.contextBefore(i) || i == 0 || w.newlineBefore(i) {
		return true
	}
	return j+1 < w.n() && (unitWords[w.words[j+1]] || w.newlineBefore(j+1))
}

// contextBefore looks for an address context word in the 40 bytes before token i.
func (w *wordText) contextBefore(i int) bool {
	st := w.tok(i).ByteStart
	return windowHas(w.s[max(0, st-contextBefore):st], addressContext)
}

// growAddress extends a core [a, b]: leading house numbers on the same line;
// then, on the same line, numbers, units and short comma-separated parts; then
// up to maxTrailLines short following lines (city, region, country, postcode).
func (w *wordText) growAddress(a, b int) (int, int) {
	n := w.n()
	for a > 0 && w.isNum(a-1) && !w.newlineBefore(a) && w.joined(a, false) {
		a--
	}
	// Same line.
	for k := 0; b+1 < n && k < maxSameLine; k++ {
		j := b + 1
		if w.newlineBefore(j) || !w.joined(j, true) || w.sentenceStart(j) && !strings.Contains(w.gap(j), ",") && !w.isNum(j) && !unitWords[w.words[j]] {
			break
		}
		if w.isNum(j) || unitWords[w.words[j]] || streetTypes[w.words[j]] || militaryWords[w.words[j]] {
			b = j
			continue
		}
		if !w.streetWord(j) || !(w.title(j) || w.upper(j)) && !strings.Contains(w.gap(j), ",") {
			break
		}
		b = j
	}
	// Following short lines.
	for line := 0; line < maxTrailLines && b+1 < n; line++ {
		j := b + 1
		if !w.newlineBefore(j) {
			break
		}
		if w.blankLineBefore(j) && !w.lineHasPostcode(j) {
			break
		}
		end, ok := w.trailLine(j)
		if !ok {
			break
		}
		b = end
	}
	return a, b
}

// trailLine accepts the line starting at token j when it is short and made of
// place words, codes and postcodes (no label, no e-mail, no long number).
func (w *wordText) trailLine(j int) (int, bool) {
	n := w.n()
	end := j
	for k := j; k < n && k < j+maxTrailTokens+1; k++ {
		if k > j && w.newlineBefore(k) {
			return end, true
		}
		if strings.ContainsAny(w.gap(k+1), ":@") && (k+1 >= n || !w.newlineBefore(k+1)) {
			return 0, false
		}
		if !(w.letters(k) || w.isNum(k)) || addressStop[w.words[k]] && !(w.words[k] == "de" || w.words[k] == "do") {
			return 0, false
		}
		end = k
	}
	if end == j+maxTrailTokens || end+1 < n && !w.newlineBefore(end+1) {
		return 0, false
	}
	return end, true
}

// lineHasPostcode reports a 4-6 digit number on the line starting at token j.
func (w *wordText) lineHasPostcode(j int) bool {
	for k := j; k < w.n() && k < j+maxTrailTokens; k++ {
		if k > j && w.newlineBefore(k) {
			break
		}
		if w.isNum(k) && len(w.words[k]) >= 4 {
			return true
		}
	}
	return false
}
