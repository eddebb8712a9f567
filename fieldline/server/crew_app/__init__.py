"""The crew's handheld app: an installable web app at `/crew/` (shell page, manifest, service
worker) whose script talks MQTT over WebSockets and keeps an offline queue; built from
`web/crew/`."""
