from marinade.cli import main

main()
