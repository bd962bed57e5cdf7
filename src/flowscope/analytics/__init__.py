"""Analytics: pure functions over run data; the SQL around them stays thin."""
