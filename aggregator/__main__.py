from aggregator.cli.app import main

main()
