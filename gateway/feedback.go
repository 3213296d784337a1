package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/stagegate/stagegate/events"
)

// Pilot-user reports: POST /v1/feedback with the interaction id (body field or
// the X-Stagegate-Interaction header the answer carried), a category and an
// optional comment. The report is published on stagegate.feedback.<trial> and
// opens (or joins) the interaction's incident; the user gets an id to quote.

// Bounds on feedback.
const (
	maxFeedbackBody = 16 << 10
	// A user may file a few reports at once, then about one every six minutes.
	feedbackRate  = 10.0 / 3600
	feedbackBurst = 5
)

// ErrFeedbackUnavailable: the report could not be recorded (503).
var ErrFeedbackUnavailable = errors.New("feedback could not be recorded")

type feedbackRequest struct {
	InteractionID string `json:"interaction_id"`
	Category      string `json:"category"`
	Comment       string `json:"comment"`
	User          string `json:"user"`
}

func (g *Gateway) serveFeedback(w http.ResponseWriter, r *http.Request) {
	if err := g.feedback(w, r); err != nil {
		writeError(w, err)
	}
}

func (g *Gateway) feedback(w http.ResponseWriter, r *http.Request) error {
	p, err := g.principal(r)
	if err != nil {
		return err
	}
	if g.d.Feedback == nil {
		return Error(http.StatusNotFound, fmt.Errorf("%w: feedback is not enabled", ErrNotFound))
	}
	body, err := readBodyWithin(w, r, maxFeedbackBody, g.cfg.BodyReadTimeout)
	if err != nil {
		return err
	}
	var req feedbackRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Error(http.StatusBadRequest, fmt.Errorf("%w: %v", ErrMalformed, err))
	}
	if req.InteractionID == "" {
		req.InteractionID = r.Header.Get(HeaderInteraction)
	}
	var problems []string
	if req.InteractionID == "" || len(req.InteractionID) > 128 {
		problems = append(problems, "'interaction_id' (or the X-Stagegate-Interaction header) is required")
	}
	if !slices.Contains(events.FeedbackCategories, req.Category) {
		problems = append(problems, fmt.Sprintf("'category' must be one of %s", strings.Join(events.FeedbackCategories, ", ")))
	}
	if len(req.Comment) > events.MaxFeedbackComment {
		problems = append(problems, fmt.Sprintf("'comment' is longer than %d bytes", events.MaxFeedbackComment))
	}
	if len(req.User) > MaxUserLen {
		problems = append(problems, fmt.Sprintf("'user' is longer than %d bytes", MaxUserLen))
	}
	if len(problems) > 0 {
		return Error(http.StatusBadRequest, fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; ")))
	}
	user := req.User
	if user == "" {
		user = "key:" + p.KeyID
	}
	user = g.d.Pseudonymize(p.Tenant, user)
	if _, err := g.limits.admit(w, p.Trial+"\x00f\x00"+user, "user's reports", feedbackRate, feedbackBurst, 0); err != nil {
		return err
	}
	fb := &events.Feedback{
		Schema: events.SchemaFeedback, ID: "fb_" + g.newID()[4:], InteractionID: req.InteractionID,
		Trial: p.Trial, Tenant: p.Tenant, User: user, Category: req.Category, Comment: req.Comment, At: g.clk.Now().UTC(),
	}
	if err := g.d.Feedback(r.Context(), fb); err != nil {
		g.log.Error("feedback not recorded", "trial", p.Trial, "feedback", fb.ID, "err", err)
		return Error(http.StatusServiceUnavailable, fmt.Errorf("%w; please try again", ErrFeedbackUnavailable))
	}
	out, _ := json.Marshal(map[string]string{"id": fb.ID, "status": "received", "interaction_id": fb.InteractionID})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(out)
	return nil
}
