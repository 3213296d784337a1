package experiment

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"slices"
)

// assignSalt prefixes every assignment hash: a different function from the
// rollout's FNV bucket of (trial, user), so the two assignments do not
// confound each other (TestAssignmentIndependentOfRollout).
const assignSalt = "stagegate.experiment.v1\x00"

// maxInlineKey is the longest salt+name+user hashed from a stack buffer; a
// longer one (never seen: pseudonyms are 26 bytes, names at most 64) costs
// one allocation.
const maxInlineKey = 192

// Assigner places the users of one experiment in its arms. It is immutable
// and safe for concurrent use.
type Assigner struct {
	name     string
	cohorts  []string
	eligible uint64   // users with an eligibility draw below it take part (of shareScale)
	bounds   []uint64 // cumulative arm shares (of shareScale), one per arm
	arms     []string
}

// NewAssigner builds the assignment of a valid definition (with defaults).
func NewAssigner(d *Definition) *Assigner {
	a := &Assigner{name: d.Name, cohorts: slices.Clone(d.Eligibility.Cohorts), eligible: uint64(d.Eligibility.Percent*shareScale/100 + 0.5)}
	var cum uint64
	for _, arm := range d.Arms {
		cum += uint64(arm.Share*shareScale/100 + 0.5)
		a.bounds = append(a.bounds, cum)
		a.arms = append(a.arms, arm.Name)
	}
	if n := len(a.bounds); n > 0 {
		a.bounds[n-1] = shareScale // shares add up to 100 %: no gap from rounding
	}
	return a
}

// Arms are the arm names, in definition order.
func (a *Assigner) Arms() []string { return a.arms }

// Assign returns the index of the arm of a user of a cohort, or -1 when the
// user does not take part (another cohort, outside the eligible percentage,
// or no user id). The same user always gets the same answer.
func (a *Assigner) Assign(user, cohort string) int {
	if user == "" || (len(a.cohorts) > 0 && !slices.Contains(a.cohorts, cohort)) {
		return -1
	}
	elig, arm := Draw(a.name, user)
	if elig >= a.eligible {
		return -1
	}
	for i, b := range a.bounds {
		if arm < b {
			return i
		}
	}
	return len(a.bounds) - 1
}

// ArmOf is Assign by name: the arm's name, or "" for a user not taking part.
func (a *Assigner) ArmOf(user, cohort string) string {
	if i := a.Assign(user, cohort); i >= 0 {
		return a.arms[i]
	}
	return ""
}

// Draw returns a user's two independent uniform draws in [0, 10000) for an
// experiment: the first decides eligibility, the second the arm. They come
// from SHA-256 of (salt, experiment name, user), so a user's arm is sticky,
// differs between experiments, and is unrelated to the rollout's bucket.
func Draw(experiment, user string) (eligibility, arm uint64) {
	var buf [maxInlineKey]byte
	b := buf[:0]
	if len(assignSalt)+len(experiment)+1+len(user) > len(buf) {
		b = make([]byte, 0, len(assignSalt)+len(experiment)+1+len(user))
	}
	b = append(b, assignSalt...)
	b = append(b, experiment...)
	b = append(b, 0)
	b = append(b, user...)
	sum := sha256.Sum256(b)
	hi1, _ := bits.Mul64(binary.BigEndian.Uint64(sum[0:8]), shareScale)
	hi2, _ := bits.Mul64(binary.BigEndian.Uint64(sum[8:16]), shareScale)
	return hi1, hi2
}
