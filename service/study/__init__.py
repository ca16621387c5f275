"""The human A/B study (`zipp study`): a web app where raters who filled an intake survey
judge blind pairs of images of the same prompt made by two rewrite methods for their
cold-start persona. `app` (rater routes) and `admin` (the admin's) over `store` (SQLite
in WAL mode: studies, invites, raters, pairs, votes) and `queue` (render jobs) that the
`worker` thread drains through `render` (persona engine + diffusion model); `results`
exports the votes and their win rates; `server` builds it all from the config."""
