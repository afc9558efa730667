from bcast.cli import main

main()
