package main

import "github.com/gossipbus/gossip/gossip"

// The event types the services exchange. Each service owns the first token
// of the types it publishes.
const (
	UserCreated gossip.EventType = "user_service.user.created"
	UserUpdated gossip.EventType = "user_service.user.updated"
	EmailSent   gossip.EventType = "email_service.email.sent"
)

// UserCreatedEvent is the payload of user_service.user.created.
type UserCreatedEvent struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
}

// UserUpdatedEvent is the payload of user_service.user.updated.
type UserUpdatedEvent struct {
	UserID string            `json:"user_id"`
	Fields map[string]string `json:"fields"`
}

// EmailSentEvent is the payload of email_service.email.sent.
type EmailSentEvent struct {
	UserID   string `json:"user_id"`
	To       string `json:"to"`
	Template string `json:"template"`
}
