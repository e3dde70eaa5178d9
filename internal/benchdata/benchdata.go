// Package benchdata holds the payload the library's benchmarks publish: a
// struct of about 256 bytes of JSON, the size bench/ uses, as services
// publish them.
package benchdata

// Payload is a user record of about 256 bytes of JSON.
type Payload struct {
	UserID    string   `json:"user_id"`
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	Plan      string   `json:"plan"`
	Tags      []string `json:"tags"`
	Score     float64  `json:"score"`
	Active    bool     `json:"active"`
	CreatedAt int64    `json:"created_at"`
	Note      string   `json:"note"`
}

// Sample is a filled Payload.
var Sample = Payload{
	UserID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Email: "ada.lovelace@example.com",
	Name: "Ada Lovelace", Plan: "enterprise", Tags: []string{"beta", "eu-west", "vip"},
	Score: 98.6, Active: true, CreatedAt: 1767225600, Note: "first user of the analytical engine service",
}
