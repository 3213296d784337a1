package console

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/stagegate/stagegate/incidents"
)

// The console's forms: workflow actions, comments and labels. Each checks the
// user's scope and role, applies the change through the store (which records
// it in the audit trail), and redirects back (post/redirect/get); a refused
// change re-renders the page with the reason.

// act applies a workflow action for p, checking scope and role first. It
// returns the HTTP status of a refusal with err.
func (c *Console) act(ctx context.Context, p *principal, id string, a incidents.Action) (*incidents.Incident, int, error) {
	inc, err := c.store.Incident(ctx, id)
	if errors.Is(err, incidents.ErrNotFound) || errors.Is(err, incidents.ErrInvalid) {
		return nil, http.StatusNotFound, incidents.ErrNotFound
	}
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	if !p.user.CanSee(inc.Trial) {
		return nil, http.StatusForbidden, errors.New("this incident belongs to a trial you cannot see")
	}
	wf, err := c.store.IncidentWorkflow(ctx, id)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	if err := p.user.CheckAction(a.Kind, inc.Status, wf.Assignee); err != nil {
		return nil, http.StatusForbidden, err
	}
	a.Actor = p.user.Name
	out, err := c.store.Act(ctx, id, a)
	switch {
	case errors.Is(err, incidents.ErrInvalid):
		return nil, http.StatusBadRequest, err
	case errors.Is(err, incidents.ErrTransition), errors.Is(err, incidents.ErrConflict):
		return nil, http.StatusConflict, err
	case errors.Is(err, incidents.ErrNotFound):
		return nil, http.StatusNotFound, err
	case err != nil:
		return nil, http.StatusInternalServerError, err
	}
	if c.nudge != nil && (a.Kind == incidents.ActionConfirm || a.Kind == incidents.ActionDismiss || a.Kind == incidents.ActionReopen) {
		c.nudge() // a confirmed severe incident may trip a kill switch: act now
	}
	c.log.Info("incident action", "incident", id, "action", a.Kind, "actor", a.Actor, "status", out.Status)
	return out, http.StatusOK, nil
}

func (c *Console) actForm(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	a := incidents.Action{
		Kind: r.PostFormValue("kind"), Reason: strings.TrimSpace(r.PostFormValue("reason")),
		Assignee: strings.TrimSpace(r.PostFormValue("assignee")), Status: r.PostFormValue("status"),
		Severity: r.PostFormValue("severity"), Category: strings.TrimSpace(r.PostFormValue("category")), Harm: r.PostFormValue("harm"),
	}
	_, status, err := c.act(r.Context(), p, id, a)
	if err != nil {
		c.formFailed(w, r, p, status, err)
		return
	}
	c.back(w, r, id, a.Kind)
}

// formFailed answers a refused form: the incident page with the reason, or an
// error page when the incident cannot be shown.
func (c *Console) formFailed(w http.ResponseWriter, r *http.Request, p *principal, status int, err error) {
	switch status {
	case http.StatusNotFound:
		c.errorPage(w, p, status, "Not found", "There is no incident "+r.PathValue("id")+".")
		return
	case http.StatusInternalServerError:
		c.internal(w, p, "change", err)
		return
	}
	inc, ierr := c.store.Incident(r.Context(), r.PathValue("id"))
	if ierr != nil || !p.user.CanSee(inc.Trial) {
		c.errorPage(w, p, status, "Not allowed", "The change was refused.")
		return
	}
	v, verr := c.incidentView(r.Context(), p, inc)
	if verr != nil {
		c.internal(w, p, "incident", verr)
		return
	}
	v.Error = "Not done: " + strings.TrimPrefix(err.Error(), "forbidden: ")
	c.render(w, status, "incident", v)
}

// back redirects to the incident page with a confirmation.
func (c *Console) back(w http.ResponseWriter, r *http.Request, id, done string) {
	secure(w)
	http.Redirect(w, r, Prefix+"/incidents/"+id+"?done="+done, http.StatusSeeOther)
}

func (c *Console) commentForm(w http.ResponseWriter, r *http.Request, p *principal) {
	inc, ok := c.loadIncident(w, r, p)
	if !ok {
		return
	}
	if !p.user.Can(incidents.PermComment) {
		c.formFailed(w, r, p, http.StatusForbidden, errors.New("your role may not comment"))
		return
	}
	if _, err := c.store.Comment(r.Context(), inc.ID, p.user.Name, r.PostFormValue("body")); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, incidents.ErrInvalid) {
			status = http.StatusBadRequest
		}
		c.formFailed(w, r, p, status, err)
		return
	}
	c.back(w, r, inc.ID, "comment")
}

func (c *Console) labelsForm(w http.ResponseWriter, r *http.Request, p *principal) {
	inc, ok := c.loadIncident(w, r, p)
	if !ok {
		return
	}
	if !p.user.Can(incidents.PermReview) {
		c.formFailed(w, r, p, http.StatusForbidden, errors.New("only reviewers label incidents"))
		return
	}
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	}
	if _, err := c.store.SetLabels(r.Context(), inc.ID, p.user.Name, split(r.PostFormValue("add")), split(r.PostFormValue("remove"))); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, incidents.ErrInvalid) {
			status = http.StatusBadRequest
		}
		c.formFailed(w, r, p, status, err)
		return
	}
	c.back(w, r, inc.ID, "labels")
}
