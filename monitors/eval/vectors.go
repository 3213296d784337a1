package eval

import "github.com/stagegate/stagegate/monitors/pii"

// vector is one reference value and whether the validator must accept it.
type vector struct {
	value string
	valid bool
}

// Reference vectors of the checksum and range validators: published examples
// (payment network test numbers, the IBAN registry's examples, the GB 11643
// examples) and one-character changes of them.
var referenceVectors = []struct {
	name    string
	check   func(string) bool
	vectors []vector
}{
	{"Luhn (payment cards)", pii.Luhn, []vector{
		{"4111111111111111", true}, {"5555555555554444", true}, {"378282246310005", true},
		{"6011111111111117", true}, {"3530111333300000", true}, {"4012888888881881", true},
		{"4111 1111 1111 1111", true}, {"4111111111111112", false}, {"1234567812345678", false},
		{"378282246310006", false},
	}},
	{"IBAN (ISO 13616, mod-97)", pii.ValidIBAN, []vector{
		{"GB82WEST12345698765432", true}, {"GB82 WEST 1234 5698 7654 32", true}, {"DE89370400440532013000", true},
		{"FR1420041010050500013M02606", true}, {"NL91ABNA0417164300", true}, {"BE68539007547034", true},
		{"CH9300762011623852957", true}, {"ES9121000418450200051332", true}, {"IT60X0542811101000000123456", true},
		{"NO9386011117947", true}, {"gb82west12345698765432", true},
		{"GB82WEST12345698765433", false}, {"DE89370400440532013001", false}, {"XX82WEST12345698765432", false},
		{"GB82WEST1234569876543", false}, {"NL91ABNA0417164301", false},
	}},
	{"Chinese resident ID (ISO 7064 MOD 11-2, region, date)", pii.ValidCNID, []vector{
		{"11010519491231002X", true}, {"440524188001010014", true}, {"310115199003071239", true},
		{"520102200002290029", true}, {"11010519491231002x", true},
		{"110105194912310021", false}, {"440524188001010015", false},
		{"990105194912310023", false}, // unknown region, correct check digit
		{"110105194913310021", false}, // month 13, correct check digit
		{"520102190002290022", false}, // 29 February 1900, correct check digit
	}},
	{"US SSN (issued ranges)", pii.ValidSSN, []vector{
		{"123-45-6789", true}, {"078-05-1120", true}, {"899-99-9999", true}, {"001 01 0001", true},
		{"000-12-3456", false}, {"666-12-3456", false}, {"900-12-3456", false}, {"123-00-4567", false},
		{"123-45-0000", false}, {"123-45-678", false},
	}},
	{"IPv4", pii.ValidIPv4, []vector{
		{"192.0.2.1", true}, {"8.8.8.8", true}, {"255.255.255.255", true}, {"10.0.0.1", true},
		{"256.1.1.1", false}, {"01.2.3.4", false}, {"1.2.3", false}, {"1.2.3.4.5", false},
	}},
}

// Vectors runs every reference vector through its validator.
func Vectors() []VectorResult {
	out := make([]VectorResult, 0, len(referenceVectors))
	for _, rv := range referenceVectors {
		r := VectorResult{Name: rv.name, Total: len(rv.vectors)}
		for _, v := range rv.vectors {
			if rv.check(v.value) == v.valid {
				r.Passed++
			}
		}
		out = append(out, r)
	}
	return out
}
