from caig.cli import main

main()
