package outbox

// SetAfterPublish makes r call f after each batch it published and before
// it marks the batch sent.
func SetAfterPublish(r *Relay, f func(ids []string)) { r.afterPublish = f }
