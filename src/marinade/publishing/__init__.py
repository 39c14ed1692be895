"""Publishing: accounts, the queue and its scheduler, one adapter per platform. The loop
back into corpora (`corpus fetch`, `retrain`) is marinade.loop_back."""
