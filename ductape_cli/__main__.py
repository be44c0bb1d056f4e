from ductape_cli.cli.app import main

main()
