package frontend_test

import (
	"context"
	"net/http"
	"time"

	"github.com/callbin/callbin/frontend"
	"github.com/gorilla/mux"
)

// How the command wires the hub and the UI: the stream and the UI behind
// the auth middleware (which must also accept ?access_token= on the
// stream, since browsers cannot set headers on a websocket), the UI as the
// router's catch-all, events published after commit, and the hub closed on
// shutdown before the stores its Backlog reads.
func Example() {
	hub := &frontend.Hub{
		// Resume: the capture events after since, ascending, from the store.
		Backlog: func(ctx context.Context, bin string, since int64, limit int) ([]frontend.Message, error) {
			return nil, nil // e.g. the store's captures with id > since (oldest first), each as inbox.CaptureEvent(c)
		},
		// A since beyond the newest capture (the data was replaced) resumes
		// from the newest instead of skipping new captures.
		Head: func(ctx context.Context) (int64, error) {
			return 0, nil // e.g. the store's LastCaptureID(ctx)
		},
	}
	requireToken := func(token string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, _, _ := r.BasicAuth()
			if token == "" || r.Header.Get("Authorization") == "Bearer "+token ||
				user == token || r.URL.Query().Get("access_token") == token {
				next.ServeHTTP(w, r)
				return
			}
			http.Error(w, "token required", http.StatusUnauthorized)
		})
	}

	r := mux.NewRouter()
	r.Handle("/api/v1/stream", requireToken("secret", hub)).Methods(http.MethodGet)
	// ... /b/{bin}, /api/v1/bins..., /v1/task... go here ...
	r.PathPrefix("/").Handler(frontend.UI()) // static files: no token needed

	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: r}
	srv.RegisterOnShutdown(func() { _ = hub.Close(context.Background()) })

	// After inbox commits capture 42 of bin "hook". inbox.Event and
	// sender.Event marshal to these shapes already: cmd passes them as Data,
	// with Bin and ID from inbox.Event (sender events have neither).
	hub.Publish(frontend.Message{Bin: "hook", ID: 42, Data: map[string]any{
		"type": "capture", "bin": "hook", "id": 42, "kind": "http", "method": "POST",
		"path": "/b/hook/orders", "size": 17, "received_at": time.Now(), "reply": map[string]int{"status": 200},
	}})

	// On shutdown: srv.Shutdown(ctx), then wait for the hub's connections,
	// then close the stores.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = hub.Close(ctx)
}
