from resdiag.cli.app import main

main()
