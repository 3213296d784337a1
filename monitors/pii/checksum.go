package pii

// Checksum and range validators of the structured identifiers. Each has a
// string form (exported, for tests and the eval's reference vectors) and a
// byte form used by the scanner.

// ibanLengths is the IBAN length of each country (ISO 13616 registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
	"MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
	"NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
	"SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// ValidIBAN reports whether s (spaces allowed, any case) is an IBAN of a known
// country with the right length and a mod-97 remainder of 1 (ISO 7064).
func ValidIBAN(s string) bool {
	var buf [40]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			continue
		}
		if n == len(buf) || !isAlnum(c) {
			return false
		}
		buf[n] = upper(c)
		n++
	}
	return ibanValid(buf[:n])
}

// ibanValid checks an upper-case, separator-free IBAN.
func ibanValid(b []byte) bool {
	if len(b) < 15 || len(b) > 34 || !isAlpha(b[0]) || !isAlpha(b[1]) || !isDigit(b[2]) || !isDigit(b[3]) {
		return false
	}
	if want, ok := ibanLengths[string(b[:2])]; !ok || want != len(b) {
		return false
	}
	// Move the first four characters to the end; letters count as 10..35.
	rem := 0
	for i := range b {
		c := b[(i+4)%len(b)]
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case 'A' <= c && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 32
	}
	return c
}

// cnRegions are the province-level codes (first two digits) of a Chinese
// resident identity number (GB 11643).
var cnRegions = [100]bool{
	11: true, 12: true, 13: true, 14: true, 15: true,
	21: true, 22: true, 23: true,
	31: true, 32: true, 33: true, 34: true, 35: true, 36: true, 37: true,
	41: true, 42: true, 43: true, 44: true, 45: true, 46: true,
	50: true, 51: true, 52: true, 53: true, 54: true,
	61: true, 62: true, 63: true, 64: true, 65: true,
	71: true, 81: true, 82: true, 83: true,
}

// ValidCNID reports whether s is an 18-character Chinese resident identity
// number: a known province code, a valid birth date (1800-2099) and the ISO
// 7064 MOD 11-2 check character (0-9 or X).
func ValidCNID(s string) bool {
	if len(s) != 18 {
		return false
	}
	return cnidValid([]byte(s))
}

var cnWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const cnCheckChars = "10X98765432"

// cnidValid checks 17 digits and a check character.
func cnidValid(b []byte) bool {
	if len(b) != 18 {
		return false
	}
	sum := 0
	for i := range 17 {
		if !isDigit(b[i]) {
			return false
		}
		sum += int(b[i]-'0') * cnWeights[i]
	}
	if upper(b[17]) != cnCheckChars[sum%11] {
		return false
	}
	if !cnRegions[int(b[0]-'0')*10+int(b[1]-'0')] {
		return false
	}
	year := atoi(b[6:10])
	month := atoi(b[10:12])
	day := atoi(b[12:14])
	return year >= 1800 && year <= 2099 && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month)
}

func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ValidSSN reports whether s ("123-45-6789", "123 45 6789" or nine digits) is
// in the ranges the US Social Security Administration issues: area 001-899
// except 666, group 01-99, serial 0001-9999.
func ValidSSN(s string) bool {
	var d [9]byte
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			if n == len(d) {
				return false
			}
			d[n] = c
			n++
		case c == '-' || c == ' ':
		default:
			return false
		}
	}
	return n == 9 && ssnValid(d[:])
}

func ssnValid(d []byte) bool {
	area, group, serial := atoi(d[0:3]), atoi(d[3:5]), atoi(d[5:9])
	return area >= 1 && area <= 899 && area != 666 && group >= 1 && serial >= 1
}

// ValidIPv4 reports whether s is a dotted-quad IPv4 address without leading
// zeros.
func ValidIPv4(s string) bool {
	parts, val, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || val > 255 || digits > 1 && s[i-digits] == '0' {
				return false
			}
			parts++
			val, digits = 0, 0
			continue
		}
		if !isDigit(s[i]) || digits == 3 {
			return false
		}
		val = val*10 + int(s[i]-'0')
		digits++
	}
	return parts == 4
}
