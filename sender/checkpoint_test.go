package sender

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestCheckpointBesideWriter: commits reach the database file through the
// background checkpointer (the write connection does not checkpoint, and a
// few tasks are far below SQLite's automatic threshold), and Close leaves
// the WAL empty.
func TestCheckpointBesideWriter(t *testing.T) {
	var path string
	e, _ := MustEngine(t, func(e *Engine) { path = e.Path })
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := st.Size()
	for range 20 {
		if _, err := e.CreateTask(t.Context(), "generic", []byte(`{"instruction":"fill a few pages of the task table"}`)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file: got %d bytes 5s after 20 commits, want more than %d (checkpointed)", st.Size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() != 0 {
		t.Fatalf("WAL after Close: got %d bytes, want 0", st.Size())
	}
}
