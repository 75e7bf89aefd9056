// Package frontend is callbin's browser side: the websocket Hub that streams
// live events (captures, sender attempts and tasks, bin changes) at
// /api/v1/stream, and the embedded browser UI served at / with its deep links
// (/bins/{bin}, /bins/{bin}/captures/{id}, /tasks, /tasks/{task_id}).
//
// The UI is plain ES modules and CSS under ui/, embedded with //go:embed and
// served as is: there is no build step. Everything captured is rendered as
// text; an e-mail's HTML is shown only in an iframe with sandbox="" (no
// scripts), under a strict Content-Security-Policy.
//
// The package imports no other callbin package: the command wires event
// sources to Hub.Publish and gives the Hub a Backlog function for resume.
package frontend
