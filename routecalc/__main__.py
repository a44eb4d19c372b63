from routecalc.cli import main

main()
