package gateway

import (
	"fmt"
	"testing"

	"github.com/stagegate/stagegate/events"
)

func TestCohortBucketSpreadsAndSticks(t *testing.T) {
	const users = 20000
	in := 0
	for i := range users {
		b := CohortBucket("clinic", fmt.Sprintf("u_%d", i))
		if b < 0 || b >= CohortScale {
			t.Fatalf("bucket %d out of range", b)
		}
		if b != CohortBucket("clinic", fmt.Sprintf("u_%d", i)) {
			t.Fatal("bucket not stable")
		}
		if b < 3000 {
			in++
		}
	}
	// 30 % of 20000 = 6000; 4 standard deviations (≈ 4 × 65) either side.
	if in < 5740 || in > 6260 {
		t.Errorf("%d of %d users in a 30 %% range", in, users)
	}
	if CohortBucket("a", "u_1") == CohortBucket("b", "u_1") && CohortBucket("a", "u_2") == CohortBucket("b", "u_2") {
		t.Error("the trial does not salt the bucket")
	}
}

func TestCohortRulesFirstMatchWins(t *testing.T) {
	rules := []CohortRule{
		{Name: "internal", Users: map[string]bool{"u_staff": true}},
		{Name: "clinicians", Attribute: "role", Values: []string{"clinician", "nurse"}},
		{Name: "pilot", From: 0, To: CohortScale},
	}
	for _, tc := range []struct {
		user  string
		attrs map[string]string
		want  string
	}{
		{"u_staff", map[string]string{"role": "nurse"}, "internal"},
		{"u_x", map[string]string{"role": "nurse"}, "clinicians"},
		{"u_x", map[string]string{"role": "admin"}, "pilot"},
		{"u_x", nil, "pilot"},
	} {
		x := &exchange{trial: &Trial{ID: "t", Cohorts: rules}, user: tc.user, principal: Principal{Cohort: "from-key", Attributes: tc.attrs},
			in: &events.Interaction{Cohort: "from-key"}}
		(&Gateway{}).assignCohort(x)
		if x.in.Cohort != tc.want {
			t.Errorf("%s %v: cohort %q, want %q", tc.user, tc.attrs, x.in.Cohort, tc.want)
		}
	}
	x := &exchange{trial: &Trial{ID: "t", Cohorts: rules[:2]}, user: "u_y", in: &events.Interaction{Cohort: "from-key"}}
	(&Gateway{}).assignCohort(x)
	if x.in.Cohort != "from-key" {
		t.Errorf("no rule matched: cohort %q, want the key's", x.in.Cohort)
	}
	if err := validateTrial("t", &Trial{Decider: nil}); err == nil {
		t.Error("a trial without decider validated")
	}
}

func TestParticipants(t *testing.T) {
	tr := &Trial{ID: "t", Tenants: []string{"acme"}, Keys: []string{"acme-web", "key_abc"}}
	for _, tc := range []struct {
		p    Principal
		want bool
	}{
		{Principal{KeyID: "key_x", KeyName: "acme-web", Tenant: "acme"}, true}, // a created key, listed by name
		{Principal{KeyID: "key_abc", Tenant: "acme"}, true},                    // listed by id
		{Principal{KeyID: "acme-web", KeyName: "acme-web", Tenant: "acme"}, true},
		{Principal{KeyID: "key_y", KeyName: "acme-app", Tenant: "acme"}, false}, // not listed
		{Principal{KeyID: "key_y", Tenant: "acme"}, false},                      // unnamed, not listed
		{Principal{KeyID: "key_abc", Tenant: "other"}, false},                   // other tenant
	} {
		err := (&Gateway{}).checkParticipant(&exchange{trial: tr, principal: tc.p})
		if (err == nil) != tc.want {
			t.Errorf("%+v: %v, want admitted %v", tc.p, err, tc.want)
		}
	}
	if err := (&Gateway{}).checkParticipant(&exchange{trial: &Trial{ID: "open"}, principal: Principal{KeyID: "k", Tenant: "x"}}); err != nil {
		t.Errorf("a trial without participant lists refused a key: %v", err)
	}
}
