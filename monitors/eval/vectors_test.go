package eval

import "testing"

// Every checksum validator passes 100% of its reference vectors (issue 6).
func TestReferenceVectors(t *testing.T) {
	for _, rv := range referenceVectors {
		for _, v := range rv.vectors {
			if got := rv.check(v.value); got != v.valid {
				t.Errorf("%s(%q) = %v, want %v", rv.name, v.value, got, v.valid)
			}
		}
	}
}
