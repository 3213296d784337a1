package pii

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

type want struct{ kind, text string }

func TestScan(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []want
	}{
		// E-mail
		{"email plain", "write to alice@example.com today", []want{{KindEmail, "alice@example.com"}}},
		{"email subdomain plus tag", "Bob.Smith+news@mail.corp.example.co.uk.", []want{{KindEmail, "Bob.Smith+news@mail.corp.example.co.uk"}}},
		{"email in chinese", "请联系张三的邮箱zhang.san@example.cn，谢谢", []want{{KindEmail, "zhang.san@example.cn"}}},
		{"email leading dots trimmed", "..x@y.io", []want{{KindEmail, "x@y.io"}}},
		{"email digits local", "13812345678@qq.com", []want{{KindEmail, "13812345678@qq.com"}}},
		{"email numeric tld rejected", "a@b.123", nil},
		{"email without dot", "user@localhost", nil},
		{"email local ends with dot", "a.@b.com", nil},
		{"email domain label dash", "a@-b.com", nil},
		{"email backs off to valid tld", "a@b.com.123", []want{{KindEmail, "a@b.com"}}},
		{"two emails back to back", "a@b.com@c.org", []want{{KindEmail, "a@b.com"}}},
		{"bare at", "@ @@ a@ @b.com", nil},

		// +86 mobiles
		{"+86 spaced", "电话+86 138 1234 5678。", []want{{KindPhone, "+86 138 1234 5678"}}},
		{"+86 dashed", "tel: +86-139-1234-5678", []want{{KindPhone, "+86-139-1234-5678"}}},
		{"+86 compact", "+8615012345678", []want{{KindPhone, "+8615012345678"}}},
		{"+86 then 11 digits", "+86 13812345678", []want{{KindPhone, "+86 13812345678"}}},

		// Bare Chinese mobiles: digit boundaries, 1[3-9]
		{"cn mobile in chinese", "我的手机号是13812345678，请回电", []want{{KindPhone, "13812345678"}}},
		{"cn mobile 3-4-4", "手机 138 1234 5678 谢谢", []want{{KindPhone, "138 1234 5678"}}},
		{"cn mobile 12 prefix rejected", "12812345678", nil},
		{"cn mobile part of longer number", "213812345678", nil},
		{"cn mobile list", "13812345678 13912345678", []want{{KindPhone, "13812345678"}, {KindPhone, "13912345678"}}},
		{"cn mobile decimal", "13812345678.5", nil},
		{"cn mobile sentence end", "call 13812345678.", []want{{KindPhone, "13812345678"}}},
		{"cn mobile glued to letters", "id13812345678 and 13812345678abc", nil},

		// E.164 and US
		{"e164 uk", "ring +44 20 7946 0958 now", []want{{KindPhone, "+44 20 7946 0958"}}},
		{"e164 compact", "+14155552671", []want{{KindPhone, "+14155552671"}}},
		{"e164 us parens", "+1 (555) 123-4567", []want{{KindPhone, "+1 (555) 123-4567"}}},
		{"e164 too short", "+1234567", nil},
		{"e164 leading zero", "+0123456789", nil},
		{"us parens", "call (555) 123-4567!", []want{{KindPhone, "(555) 123-4567"}}},
		{"us parens no space", "(555)123-4567", []want{{KindPhone, "(555)123-4567"}}},
		{"us dashes", "555-123-4567", []want{{KindPhone, "555-123-4567"}}},
		{"us dots", "555.123.4567", []want{{KindPhone, "555.123.4567"}}},
		{"us with 1", "1-555-123-4567", []want{{KindPhone, "1-555-123-4567"}}},
		{"us mixed separators rejected", "555-123.4567", nil},
		{"us area code 1xx rejected", "155-123-4567", nil},
		{"us longer chain rejected", "555-123-4567-8901", nil},

		// Cards
		{"card visa spaced", "卡号4111 1111 1111 1111有效期", []want{{KindCard, "4111 1111 1111 1111"}}},
		{"card visa dashed", "4111-1111-1111-1111", []want{{KindCard, "4111-1111-1111-1111"}}},
		{"card bare", "pay with 5555555555554444.", []want{{KindCard, "5555555555554444"}}},
		{"card amex 4-6-5", "3782 822463 10005", []want{{KindCard, "3782 822463 10005"}}},
		{"card 19 digits unionpay", "银联卡6222 0210 0112 3456 789。", []want{{KindCard, "6222 0210 0112 3456 789"}}},
		{"card 19 digits luhn fails", "6222 0210 0112 3456 780", nil},
		{"card prefix valid, rest not", "6011 0009 9013 9424 008", []want{{KindCard, "6011 0009 9013 9424"}}},
		{"card luhn fails", "4111 1111 1111 1112", nil},
		{"card mixed separators", "4111-1111 1111-1111", nil},
		{"card after other number", "ref 1234 4111 1111 1111 1111", []want{{KindCard, "4111 1111 1111 1111"}}},
		{"card glued to letters", "tok_4111111111111111x", nil},
		{"card 20 digits", "41111111111111111113", nil},
		{"card then phone", "4111111111111111 13812345678", []want{{KindCard, "4111111111111111"}, {KindPhone, "13812345678"}}},

		// Not PII
		{"dates and versions", "2024-01-15 v1.22.4 3.14159265358979323846 released 1990-2000", nil},
		{"uuid", "550e8400-e29b-41d4-a716-446655440000", nil},
		{"long digit run", strings.Repeat("4111", 20), nil},
		{"empty", "", nil},

		// Mixed, offsets after multi-byte text
		{"mixed chinese", "你好，我是李雷，电话+86 138 1234 5678，邮箱li.lei@163.com，卡号 4111-1111-1111-1111。", []want{
			{KindPhone, "+86 138 1234 5678"}, {KindEmail, "li.lei@163.com"}, {KindCard, "4111-1111-1111-1111"},
		}},
		{"emoji and invalid utf8", "😀\xff13812345678 😀 a@b.cn", []want{{KindPhone, "13812345678"}, {KindEmail, "a@b.cn"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Scan(tt.text, nil)
			runes := []rune(tt.text)
			var gotW []want
			for _, m := range got {
				if m.Start < 0 || m.End > len(runes) || m.Start >= m.End {
					t.Fatalf("span [%d,%d) out of range for %d code points", m.Start, m.End, len(runes))
				}
				byRune := string(runes[m.Start:m.End])
				if byRune != tt.text[m.ByteStart:m.ByteEnd] {
					t.Errorf("code-point span %q != byte span %q", byRune, tt.text[m.ByteStart:m.ByteEnd])
				}
				gotW = append(gotW, want{m.Kind, byRune})
			}
			if fmt.Sprint(gotW) != fmt.Sprint(tt.want) {
				t.Errorf("Scan(%q)\n got %v\nwant %v", tt.text, gotW, tt.want)
			}
		})
	}
}

// Offsets spelled out by hand: 你好 are two code points (six bytes).
func TestScanCodePointOffsets(t *testing.T) {
	got := Scan("你好13812345678 a@b.cn", nil)
	if len(got) != 2 {
		t.Fatalf("got %d matches, want 2", len(got))
	}
	if got[0].Start != 2 || got[0].End != 13 || got[0].ByteStart != 6 || got[0].ByteEnd != 17 {
		t.Errorf("phone at cp [%d,%d) bytes [%d,%d), want cp [2,13) bytes [6,17)", got[0].Start, got[0].End, got[0].ByteStart, got[0].ByteEnd)
	}
	if got[1].Start != 14 || got[1].End != 20 {
		t.Errorf("email at cp [%d,%d), want [14,20)", got[1].Start, got[1].End)
	}
	// Appending keeps what dst held.
	dst := Scan("x@y.io", []Match{{Kind: "keep"}})
	if len(dst) != 2 || dst[0].Kind != "keep" || dst[1].Start != 0 || dst[1].End != 6 {
		t.Errorf("append to dst: %+v", dst)
	}
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		number string
		valid  bool
	}{
		{"4111111111111111", true},    // Visa test number
		{"4111 1111 1111 1111", true}, // separators ignored
		{"5555555555554444", true},    // Mastercard
		{"378282246310005", true},     // Amex
		{"6011111111111117", true},    // Discover
		{"30569309025904", true},      // Diners
		{"4222222222222", true},       // 13-digit Visa
		{"79927398713", true},         // the classic example
		{"0", true},
		{"4111111111111112", false},
		{"79927398710", false},
		{"1234567812345678", false},
		{"4111-1111-1111-111x", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Luhn(tt.number); got != tt.valid {
			t.Errorf("Luhn(%q) = %v, want %v", tt.number, got, tt.valid)
		}
	}
}

var benchTexts = map[string]string{
	"no_pii_en": strings.Repeat("The quick brown fox jumps over the lazy dog, version 1.2.3 on 2024-01-15. ", 20),
	"no_pii_zh": strings.Repeat("这是一个没有个人信息的普通回答，包含数字2024年和3.14。", 20),
	"pii_mixed": strings.Repeat("联系电话+86 138 1234 5678，邮箱li.lei@163.com，卡号4111 1111 1111 1111。", 5),
}

func BenchmarkScan(b *testing.B) {
	for name, text := range benchTexts {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			dst := make([]Match, 0, 64)
			for b.Loop() {
				dst = Scan(text, dst[:0])
			}
		})
	}
}

// BenchmarkScanRegexpBaseline measures the precompiled-regexp alternative (only
// the candidate search, without Luhn or format checks) on the same texts, to keep
// the hand-written scanner honest: it must stay clearly faster than this.
func BenchmarkScanRegexpBaseline(b *testing.B) {
	email := regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	number := regexp.MustCompile(`\+?\(?\d[\d ().-]{6,}\d`)
	for name, text := range benchTexts {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				_ = email.FindAllStringIndex(text, -1)
				_ = number.FindAllStringIndex(text, -1)
			}
		})
	}
}
