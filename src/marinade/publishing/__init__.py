"""Publishing: accounts, the queue and its scheduler, one adapter per platform, the loop back
into corpora (`corpus fetch`, `retrain`)."""
