"""Qt-free state of the window's views: run states, live gaps and stalls."""
