package pii

import (
	"context"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// TestScanKinds covers the identifiers, names and addresses added to the
// e-mail, phone and card scanners, with hard negatives for each.
func TestScanKinds(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []want
	}{
		// IBAN: country length and mod-97.
		{"iban compact", "pay GB82WEST12345698765432 today", []want{{KindIBAN, "GB82WEST12345698765432"}}},
		{"iban grouped", "IBAN: DE89 3704 0044 0532 0130 00.", []want{{KindIBAN, "DE89 3704 0044 0532 0130 00"}}},
		{"iban lower case", "my iban is gb82west12345698765432", []want{{KindIBAN, "gb82west12345698765432"}}},
		{"iban bad check digits", "GB82WEST12345698765433", nil},
		{"iban wrong length", "DE8937040044053201300", nil},

		// Chinese resident identity numbers.
		{"cn id with X", "身份证号11010519491231002X，请核对", []want{{KindCNID, "11010519491231002X"}}},
		{"cn id digits", "ID 440524188001010014", []want{{KindCNID, "440524188001010014"}}},
		{"cn id bad check digit", "110105194912310021", nil},
		{"cn id bad date", "110105194913310021", nil},

		// US SSN.
		{"ssn", "SSN: 123-45-6789", []want{{KindSSN, "123-45-6789"}}},
		{"ssn area 666", "666-12-3456", nil},
		{"ssn area 9xx", "900-12-3456", nil},
		{"ssn bare with context", "my social security number is 078051120", []want{{KindSSN, "078051120"}}},
		{"nine digits without context", "order 078051120 shipped", nil},

		// Passport-like numbers after the word.
		{"passport", "Passport number: E12345678.", []want{{KindPassport, "E12345678"}}},
		{"passport chinese", "我的护照号码是G12345678", []want{{KindPassport, "G12345678"}}},
		{"no passport word", "reference E12345678", nil},

		// IPv4.
		{"ip", "blocked at 41.176.181.243 again", []want{{KindIP, "41.176.181.243"}}},
		{"ip out of range", "256.1.1.1", nil},
		{"version is not an ip", "v1.2.3.4", nil},

		// More phone formats, some only next to a phone word.
		{"phone national groups", "Phone: 083 564 9312", []want{{KindPhone, "083 564 9312"}}},
		{"phone with extension", "Fax: 463-612-6138x036", []want{{KindPhone, "463-612-6138x036"}}},
		{"phone trunk prefix", "Desk: +41 (0)85 806 98 67", []want{{KindPhone, "+41 (0)85 806 98 67"}}},
		{"short phone needs a phone word", "Can someone call me on 9472 7916?", []want{{KindPhone, "9472 7916"}}},
		{"same digits without a phone word", "Chapter 9472 7916", nil},
		{"luhn-failing card is not a phone", "card 4111 1111 1111 1112", nil},
		{"twelve-digit card only near the word card", "limit for card 584528792610?", []want{{KindCard, "584528792610"}}},
		{"date is not a phone", "Date: 2015-12-22 04:34:22", nil},

		// Names and addresses.
		{"name after context", "My name is Lisa Wirtz.", []want{{KindPerson, "Lisa Wirtz"}}},
		{"name with initial and surname morphology", "Janka M. Szász wrote", []want{{KindPerson, "Janka M. Szász"}}},
		{"dialogue speakers", "Zuzana: \"Who are you?\"", []want{{KindPerson, "Zuzana"}}},
		{"list of names", "founders: Kónya, Becker and Vasquez.", []want{{KindPerson, "Kónya"}, {KindPerson, "Becker"}, {KindPerson, "Vasquez"}}},
		{"organisation is not a person", "Smith Ltd. called", nil},
		{"street address block", "Send it to 1317 Kimberly Way\n Apt. 962\n Grand Rapids\n", []want{{KindAddress, "1317 Kimberly Way\n Apt. 962\n Grand Rapids"}}},
		{"european street", "The bus station is on Villacher Strasse 89", []want{{KindAddress, "Villacher Strasse 89"}}},
		{"military address", "USNS Møller\nFPO AA 85844", []want{{KindAddress, "USNS Møller\nFPO AA 85844"}}},
		{"numbers in prose are not an address", "I have 2 cats and 3 dogs", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []want
			for _, m := range Scan(tt.text, nil) {
				got = append(got, want{m.Kind, string([]rune(tt.text)[m.Start:m.End])})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Scan(%q)\n got %v\nwant %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestDetectKindsAndSeverity(t *testing.T) {
	d := mustNew(t, Config{})
	tests := []struct {
		name, prompt, response, severity string
	}{
		{"leaked iban is high", "what is her account?", "Her IBAN is GB82WEST12345698765432.", events.SeverityHigh},
		{"prompt national id is medium", "my id is 11010519491231002X", "noted", events.SeverityMedium},
		{"name alone in a prompt is low", "Please write a birthday card for Anna Schmidt", "Happy birthday!", events.SeverityLow},
		{"name in an answer alone is not pii", "who discovered radium?", "Marie Curie and Pierre Curie.", ""},
		{"name and address leaked", "who lives there?", "John Miller lives at 24 Kent Street, Apt. 5.", events.SeverityMedium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := d.Detect(context.Background(), interaction(tt.response, tt.prompt))
			if err != nil {
				t.Fatal(err)
			}
			if tt.severity == "" {
				if len(fs) != 0 {
					t.Fatalf("flagged: %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Severity != tt.severity {
				t.Fatalf("findings %+v, want severity %s", fs, tt.severity)
			}
		})
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"GB82 WEST 1234 5698 7654 32", "11010519491231002X", "SSN 078051120", "Passport: E12345678",
		"Phone: 083 564 9312 x12", "My name is Lisa Wirtz", "1317 Kimberly Way\n Apt. 962", "\xff\xfe 192.168.0.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms := Scan(s, nil)
		n := utf8.RuneCountInString(s)
		prev := 0
		for _, m := range ms {
			if m.Start < prev || m.End <= m.Start || m.End > n || m.ByteStart < 0 || m.ByteEnd > len(s) || m.ByteEnd <= m.ByteStart {
				t.Fatalf("match %+v out of order or range (%d runes)", m, n)
			}
			if utf8.RuneCountInString(s[:m.ByteStart]) != m.Start {
				t.Fatalf("match %+v: code point offset disagrees with bytes", m)
			}
			prev = m.End
		}
	})
}
