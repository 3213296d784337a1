package gateway_test

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// httputilProxy forwards to target (a base URL ending in /v1).
type httputilProxy struct{ target string }

func (p *httputilProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, _ := url.Parse(p.target)
	u.Path = ""
	httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
}
