package frontend

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEventShapes(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	yes := true
	tests := []struct {
		name    string
		m       Message
		wantBin string
		wantID  int64
		want    string
	}{
		{"capture", CaptureEvent{Bin: "hook", ID: 42, Kind: "http", Method: "POST", Path: "/b/hook/x", Size: 12, ReceivedAt: at, Reply: map[string]int{"status": 500}}.Message(),
			"hook", 42, `{"type":"capture","bin":"hook","id":42,"kind":"http","method":"POST","path":"/b/hook/x","size":12,"received_at":"2026-01-02T03:04:05.123456789Z","reply":{"status":500}}`},
		{"e-mail capture", CaptureEvent{Bin: "hook", ID: 43, Kind: "email", Path: "hook@x", Size: 900, ReceivedAt: at, Subject: "Hi"}.Message(),
			"hook", 43, `{"type":"capture","bin":"hook","id":43,"kind":"email","path":"hook@x","size":900,"received_at":"2026-01-02T03:04:05.123456789Z","subject":"Hi"}`},
		{"attempt", AttemptEvent{TaskID: "t1", Delivery: 7, Attempt: 2, URL: "http://127.0.0.1:9/", Error: "connection refused", LatencyMS: 3}.Message(),
			"", 0, `{"type":"attempt","task_id":"t1","delivery":7,"attempt":2,"url":"http://127.0.0.1:9/","error":"connection refused","latency_ms":3}`},
		{"task", TaskEvent{TaskID: "t1", Status: "completed", CallbackSucceeded: &yes}.Message(),
			"", 0, `{"type":"task","task_id":"t1","status":"completed","callback_succeeded":true}`},
		{"bin", BinEvent{Action: "deleted", Name: "hook"}.Message(),
			"hook", 0, `{"type":"bin","action":"deleted","name":"hook"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.m.Bin != tt.wantBin || tt.m.ID != tt.wantID {
				t.Errorf("routing: got bin %q id %d, want %q %d", tt.m.Bin, tt.m.ID, tt.wantBin, tt.wantID)
			}
			got, err := json.Marshal(tt.m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("JSON:\ngot  %s\nwant %s", got, tt.want)
			}
			if _, err := newFrame(tt.m); err != nil {
				t.Errorf("newFrame: got %v, want nil", err)
			}
		})
	}
}
