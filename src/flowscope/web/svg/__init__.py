"""Charts drawn on the server as inline SVG: no chart library, no script, readable without
JavaScript, and each chart carries a text alternative."""
